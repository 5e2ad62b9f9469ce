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

// x * rsqrt(mean(x^2) + eps) * w is an rms_norm (eps the f32 1e-6, widened), and
// y * sigmoid(y) a silu: 12 ops become 3.
// CHECK-LABEL: func.func @f
// CHECK-NEXT:  %0 = "tg.rms_norm"(%arg0, %arg1) {axis = 1 : i64, epsilon = 9.999999974752427e-7 : f64}
// CHECK-NEXT:  %1 = "tg.silu"(%0)
// CHECK-NEXT:  return %1
// CHECK:       'raise'
// CHECK:       (ops-before) 12 :
// CHECK-NEXT:  (ops-after) 3 :
// CHECK:       (rule:rms-norm) 1
// CHECK-NEXT:  (rule:rsqrt) 1
// CHECK-NEXT:  (rule:silu) 1
