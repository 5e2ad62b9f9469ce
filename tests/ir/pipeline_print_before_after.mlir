// RUN: --pass-pipeline='canonicalize,cse' --print-ir-before=cse --print-ir-after=canonicalize
func.func @f(%x: tensor<2xf32>) -> tensor<2xf32> {
  %z = "tg.constant"() {value = dense<0.0> : tensor<2xf32>} : () -> tensor<2xf32>
  %a = "tg.add"(%x, %z) : (tensor<2xf32>, tensor<2xf32>) -> tensor<2xf32>
  return %a : tensor<2xf32>
}
