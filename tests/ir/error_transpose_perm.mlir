// RUN:
func.func @f(%x: tensor<2x3xf32>) -> tensor<3x2xf32> {
  %0 = "tg.transpose"(%x) {perm = [1, 1]} : (tensor<2x3xf32>) -> tensor<3x2xf32>
  return %0 : tensor<3x2xf32>
}
