// RUN:
func.func @f(%a: tensor<2x1xf32>, %b: tensor<3xf32>) -> tensor<2x1xf32> {
  %0 = "tg.mul"(%a, %b) : (tensor<2x1xf32>, tensor<3xf32>) -> tensor<2x1xf32>
  return %0 : tensor<2x1xf32>
}

// CHECK:      // exit 1
// CHECK-NEXT: error_result_type.mlir:3:8: error: 'tg.mul' op result #0 has type tensor<2x1xf32>, but its operands imply tensor<2x3xf32>
// CHECK-NEXT: %0 = "tg.mul"(%a, %b) : (tensor<2x1xf32>, tensor<3xf32>) -> tensor<2x1xf32>
// CHECK-NEXT: ^
