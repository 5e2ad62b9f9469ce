// RUN: --pass-pipeline='builtin.module(raise,canonicalize)'
// The mean runs over axis 0, not the last axis: not an rms_norm.
func.func @f(%x: tensor<2x8xf32>, %w: tensor<8xf32>) -> tensor<2x8xf32> {
  %two = "tg.constant"() {value = dense<2.0> : tensor<f32>} : () -> tensor<f32>
  %eps = "tg.constant"() {value = dense<1.0e-6> : tensor<f32>} : () -> tensor<f32>
  %sq = "tg.pow"(%x, %two) : (tensor<2x8xf32>, tensor<f32>) -> tensor<2x8xf32>
  %ms = "tg.reduce_mean"(%sq) {axes = [0], keepdims = true} : (tensor<2x8xf32>) -> tensor<1x8xf32>
  %v = "tg.add"(%ms, %eps) : (tensor<1x8xf32>, tensor<f32>) -> tensor<1x8xf32>
  %r = "tg.rsqrt"(%v) : (tensor<1x8xf32>) -> tensor<1x8xf32>
  %n = "tg.mul"(%x, %r) : (tensor<2x8xf32>, tensor<1x8xf32>) -> tensor<2x8xf32>
  %y = "tg.mul"(%w, %n) : (tensor<8xf32>, tensor<2x8xf32>) -> tensor<2x8xf32>
  return %y : tensor<2x8xf32>
}

// CHECK-LABEL: func.func @f
// CHECK-NOT:   "tg.rms_norm"
// CHECK:       "tg.reduce_mean"(%{{[0-9]+}}) {axes = [0 : i64], keepdims = true}
// CHECK:       "tg.rsqrt"
// CHECK-NOT:   "tg.rms_norm"
