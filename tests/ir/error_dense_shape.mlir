// RUN:
func.func @f() {
  %0 = "tg.constant"() {value = dense<[[1.0, 2.0], [3.0]]> : tensor<2x2xf32>} : () -> tensor<2x2xf32>
  return
}

// CHECK:      // exit 1
// CHECK-NEXT: error_dense_shape.mlir:3:52: error: dense<> literal is ragged: sublists differ in length
// CHECK-NEXT: %0 = "tg.constant"() {value = dense<{{\[\[}}1.0, 2.0], [3.0]]> : tensor<2x2xf32>} : () -> tensor<2x2xf32>
// CHECK-NEXT: ^
