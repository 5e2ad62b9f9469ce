// RUN: --allow-unregistered-dialect
func.func @f(%a: tensor<2xf32>) -> tensor<2xf32> {
  %0 = "tg.frobnicate"(%a) : (tensor<2xf32>) -> tensor<2xf32>
  return %0 : tensor<2xf32>
}

// CHECK:      // exit 1
// CHECK-NEXT: error_unregistered_op.mlir:3:8: error: 'tg.frobnicate' op is not a registered operation of dialect 'tg'
// CHECK-NEXT: %0 = "tg.frobnicate"(%a) : (tensor<2xf32>) -> tensor<2xf32>
// CHECK-NEXT: ^
