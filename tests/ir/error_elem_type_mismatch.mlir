// RUN:
func.func @f(%a: tensor<2xf32>, %b: tensor<2xbf16>) -> tensor<2xf32> {
  %0 = "tg.sub"(%a, %b) : (tensor<2xf32>, tensor<2xbf16>) -> tensor<2xf32>
  return %0 : tensor<2xf32>
}
