// RUN: --allow-unregistered-dialect
func.func @group(%x: tensor<4xf32>, %w: tensor<4xf32>) -> tensor<4xf32> {
  %r = "demo.group"(%x) ({
  ^bb0(%in: tensor<4xf32>):
    %m = "tg.mul"(%in, %w) : (tensor<4xf32>, tensor<4xf32>) -> tensor<4xf32>
    "demo.yield"(%m) : (tensor<4xf32>) -> ()
  }, {
    "demo.yield"() : () -> ()
  }) : (tensor<4xf32>) -> tensor<4xf32>
  return %r : tensor<4xf32>
}
