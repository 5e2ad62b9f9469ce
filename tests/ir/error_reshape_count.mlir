// RUN:
func.func @f(%x: tensor<2x3xf32>) -> tensor<7xf32> {
  %0 = "tg.reshape"(%x) : (tensor<2x3xf32>) -> tensor<7xf32>
  return %0 : tensor<7xf32>
}

// CHECK:      // exit 1
// CHECK-NEXT: error_reshape_count.mlir:3:8: error: 'tg.reshape' op cannot reshape tensor<2x3xf32> into tensor<7xf32>
// CHECK-NEXT: %0 = "tg.reshape"(%x) : (tensor<2x3xf32>) -> tensor<7xf32>
// CHECK-NEXT: ^
