// RUN:
func.func @f(%x: tensor<4x4xf32>, %c: tensor<3xf32>) -> tensor<4x4xf32> {
  %0 = "tg.rope"(%x, %c, %c) : (tensor<4x4xf32>, tensor<3xf32>, tensor<3xf32>) -> tensor<4x4xf32>
  return %0 : tensor<4x4xf32>
}

// CHECK:      // exit 1
// CHECK-NEXT: error_rope_width.mlir:3:8: error: 'tg.rope' op cos/sin cover 6 lanes but x has only 4
// CHECK-NEXT: %0 = "tg.rope"(%x, %c, %c) : (tensor<4x4xf32>, tensor<3xf32>, tensor<3xf32>) -> tensor<4x4xf32>
// CHECK-NEXT: ^
