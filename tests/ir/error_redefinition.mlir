// RUN:
func.func @f(%x: tensor<2xf32>) -> tensor<2xf32> {
  %0 = "tg.neg"(%x) : (tensor<2xf32>) -> tensor<2xf32>
  %0 = "tg.exp"(%x) : (tensor<2xf32>) -> tensor<2xf32>
  return %0 : tensor<2xf32>
}

// CHECK:      // exit 1
// CHECK-NEXT: error_redefinition.mlir:4:3: error: redefinition of SSA value '%0'
// CHECK-NEXT: %0 = "tg.exp"(%x) : (tensor<2xf32>) -> tensor<2xf32>
// CHECK-NEXT: ^
// CHECK-NEXT: error_redefinition.mlir:3:3: note: previously defined here
// CHECK-NEXT: %0 = "tg.neg"(%x) : (tensor<2xf32>) -> tensor<2xf32>
// CHECK-NEXT: ^
