// RUN:
func.func @f(%a: tensor<2xi32>) -> tensor<2xi32> {
  %0 = "tg.exp"(%a) : (tensor<2xi32>) -> tensor<2xi32>
  return %0 : tensor<2xi32>
}
