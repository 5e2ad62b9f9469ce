// RUN:
func.func @f(%a: tensor<2xf32>) -> tensor<2xf32> {
  %0 = "tg.neg"(%a) : (tensor<2xf32>) -> tensor<2xf32>
}
