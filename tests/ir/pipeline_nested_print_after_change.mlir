// RUN: --pass-pipeline='builtin.module(func.func(canonicalize,cse),dce)' --print-ir-after-change
func.func @f(%x: tensor<2xf32>) -> tensor<2xf32> {
  %one = "tg.constant"() {value = dense<1.0> : tensor<2xf32>} : () -> tensor<2xf32>
  %a = "tg.mul"(%x, %one) : (tensor<2xf32>, tensor<2xf32>) -> tensor<2xf32>
  return %a : tensor<2xf32>
}
func.func @g(%x: tensor<2xf32>) -> tensor<2xf32> {
  %a = "tg.exp"(%x) : (tensor<2xf32>) -> tensor<2xf32>
  %b = "tg.exp"(%x) : (tensor<2xf32>) -> tensor<2xf32>
  %c = "tg.add"(%a, %b) : (tensor<2xf32>, tensor<2xf32>) -> tensor<2xf32>
  return %c : tensor<2xf32>
}
