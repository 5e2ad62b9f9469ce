// RUN: --pass-pipeline='builtin.module(canonicalize)'
func.func @f(%x: tensor<3xf32>) -> tensor<2x3xf32> {
  %zero = "tg.constant"() {value = dense<0.0> : tensor<2x3xf32>} : () -> tensor<2x3xf32>
  %a = "tg.add"(%x, %zero) : (tensor<3xf32>, tensor<2x3xf32>) -> tensor<2x3xf32>
  return %a : tensor<2x3xf32>
}
