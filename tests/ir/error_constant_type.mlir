// RUN:
func.func @f() -> tensor<2xf32> {
  %0 = "tg.constant"() {value = dense<1.0> : tensor<3xf32>} : () -> tensor<2xf32>
  return %0 : tensor<2xf32>
}

// CHECK:      // exit 1
// CHECK-NEXT: error_constant_type.mlir:3:8: error: 'tg.constant' op value has type tensor<3xf32>, but the result has type tensor<2xf32>
// CHECK-NEXT: %0 = "tg.constant"() {value = dense<1.0> : tensor<3xf32>} : () -> tensor<2xf32>
// CHECK-NEXT: ^
