// RUN:
func.func @f(%a: tensor<2x3xf32>, %b: tensor<4x5xf32>) -> tensor<2x5xf32> {
  %0 = "tg.matmul"(%a, %b) : (tensor<2x3xf32>, tensor<4x5xf32>) -> tensor<2x5xf32>
  return %0 : tensor<2x5xf32>
}

// CHECK:      // exit 1
// CHECK-NEXT: error_matmul_shapes.mlir:3:8: error: 'tg.matmul' op contraction dimensions differ: 3 and 4 (tensor<2x3xf32> x tensor<4x5xf32>)
// CHECK-NEXT: %0 = "tg.matmul"(%a, %b) : (tensor<2x3xf32>, tensor<4x5xf32>) -> tensor<2x5xf32>
// CHECK-NEXT: ^
