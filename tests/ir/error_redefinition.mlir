// RUN:
func.func @f(%x: tensor<2xf32>) -> tensor<2xf32> {
  %0 = "tg.neg"(%x) : (tensor<2xf32>) -> tensor<2xf32>
  %0 = "tg.exp"(%x) : (tensor<2xf32>) -> tensor<2xf32>
  return %0 : tensor<2xf32>
}
