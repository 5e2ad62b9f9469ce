// RUN: --pass-pipeline='builtin.module(dce)' --allow-unregistered-dialect
func.func @f(%x: tensor<4xf32>) {
  %a = "tg.exp"(%x) : (tensor<4xf32>) -> tensor<4xf32>
  "demo.store"(%a) : (tensor<4xf32>) -> ()
  %unused = "demo.effect"() : () -> tensor<4xf32>
  %dead = "tg.neg"(%x) : (tensor<4xf32>) -> tensor<4xf32>
  return
}
