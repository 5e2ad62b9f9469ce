// RUN: --pass-pipeline='builtin.module(canonicalize)'
func.func @f(%x: tensor<3xf32>) -> (tensor<3xf32>, tensor<3xi32>, tensor<3xf32>) {
  %same = "tg.cast"(%x) : (tensor<3xf32>) -> tensor<3xf32>
  %c = "tg.constant"() {value = dense<[-1.5, 0.5, 2.7]> : tensor<3xf32>} : () -> tensor<3xf32>
  %i = "tg.cast"(%c) : (tensor<3xf32>) -> tensor<3xi32>
  %zero = "tg.constant"() {value = dense<0.0> : tensor<f32>} : () -> tensor<f32>
  %pos = "tg.gt"(%c, %zero) : (tensor<3xf32>, tensor<f32>) -> tensor<3xi1>
  %w = "tg.where"(%pos, %c, %zero) : (tensor<3xi1>, tensor<3xf32>, tensor<f32>) -> tensor<3xf32>
  return %same, %i, %w : tensor<3xf32>, tensor<3xi32>, tensor<3xf32>
}
