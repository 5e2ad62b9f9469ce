// RUN:
func.func @f(%x: tensor<4x4xf32>, %c: tensor<3xf32>) -> tensor<4x4xf32> {
  %0 = "tg.rope"(%x, %c, %c) : (tensor<4x4xf32>, tensor<3xf32>, tensor<3xf32>) -> tensor<4x4xf32>
  return %0 : tensor<4x4xf32>
}
