// RUN: --pass-pipeline='builtin.module(raise,canonicalize)' --pass-statistics
func.func @f(%x: tensor<2x8xf32>, %w: tensor<8xf32>) -> tensor<2x8xf32> {
  %two = "tg.constant"() {value = dense<2.0> : tensor<f32>} : () -> tensor<f32>
  %eps = "tg.constant"() {value = dense<1.0e-6> : tensor<f32>} : () -> tensor<f32>
  %sq = "tg.pow"(%x, %two) : (tensor<2x8xf32>, tensor<f32>) -> tensor<2x8xf32>
  %ms = "tg.reduce_mean"(%sq) {axes = [1], keepdims = true} : (tensor<2x8xf32>) -> tensor<2x1xf32>
  %v = "tg.add"(%ms, %eps) : (tensor<2x1xf32>, tensor<f32>) -> tensor<2x1xf32>
  %s = "tg.sqrt"(%v) : (tensor<2x1xf32>) -> tensor<2x1xf32>
  %r = "tg.reciprocal"(%s) : (tensor<2x1xf32>) -> tensor<2x1xf32>
  %n = "tg.mul"(%x, %r) : (tensor<2x8xf32>, tensor<2x1xf32>) -> tensor<2x8xf32>
  %y = "tg.mul"(%w, %n) : (tensor<8xf32>, tensor<2x8xf32>) -> tensor<2x8xf32>
  %g = "tg.sigmoid"(%y) : (tensor<2x8xf32>) -> tensor<2x8xf32>
  %a = "tg.mul"(%g, %y) : (tensor<2x8xf32>, tensor<2x8xf32>) -> tensor<2x8xf32>
  return %a : tensor<2x8xf32>
}
