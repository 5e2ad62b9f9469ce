// RUN: --pass-pipeline='builtin.module(canonicalize{max-iterations=4},cse,dce)' --pass-statistics
func.func @f(%x: tensor<3xf32>) -> tensor<3xf32> {
  %two = "tg.constant"() {value = dense<2.0> : tensor<3xf32>} : () -> tensor<3xf32>
  %three = "tg.constant"() {value = dense<3.0> : tensor<3xf32>} : () -> tensor<3xf32>
  %five = "tg.add"(%two, %three) : (tensor<3xf32>, tensor<3xf32>) -> tensor<3xf32>
  %five_again = "tg.add"(%three, %two) : (tensor<3xf32>, tensor<3xf32>) -> tensor<3xf32>
  %a = "tg.mul"(%five, %x) : (tensor<3xf32>, tensor<3xf32>) -> tensor<3xf32>
  %b = "tg.mul"(%x, %five_again) : (tensor<3xf32>, tensor<3xf32>) -> tensor<3xf32>
  %c = "tg.add"(%a, %b) : (tensor<3xf32>, tensor<3xf32>) -> tensor<3xf32>
  return %c : tensor<3xf32>
}
