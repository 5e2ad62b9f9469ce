// RUN:
func.func @f(%a: tensor<2xf32>) -> tensor<2xbf16> {
  return %a : tensor<2xf32>
}
