// RUN: --pass-pipeline='builtin.module(cse)' --allow-unregistered-dialect
func.func @f(%x: tensor<4xf32>) -> tensor<4xf32> {
  %outer = "tg.exp"(%x) : (tensor<4xf32>) -> tensor<4xf32>
  %r = "demo.region"() ({
    %inner = "tg.exp"(%x) : (tensor<4xf32>) -> tensor<4xf32>
    %only_inside = "tg.neg"(%x) : (tensor<4xf32>) -> tensor<4xf32>
    "demo.yield"(%inner, %only_inside) : (tensor<4xf32>, tensor<4xf32>) -> ()
  }) : () -> tensor<4xf32>
  %after = "tg.neg"(%x) : (tensor<4xf32>) -> tensor<4xf32>
  %s = "tg.add"(%outer, %after) : (tensor<4xf32>, tensor<4xf32>) -> tensor<4xf32>
  %t = "tg.add"(%s, %r) : (tensor<4xf32>, tensor<4xf32>) -> tensor<4xf32>
  return %t : tensor<4xf32>
}
