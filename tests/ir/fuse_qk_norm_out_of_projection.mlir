// RUN: --pass-pipeline='builtin.module(fuse)'
// Qwen3-style q/k: each head (128 lanes) is RMS-normed after its projection. Fused with the
// projection, a task would need a whole head's weights (16 tasks for q, 8 for k); the cost
// model sees that limit, so the norms (with rope) form a group of their own after the
// q/k/v group, and the q and k norms share it.
func.func @f(%x: tensor<1024xf32>, %g: tensor<1024xbf16> {mkc.weight = "in_norm"}, %wq: tensor<2048x1024xbf16> {mkc.weight = "q"}, %wk: tensor<1024x1024xbf16> {mkc.weight = "k"}, %wv: tensor<1024x1024xbf16> {mkc.weight = "v"}, %gq: tensor<128xbf16> {mkc.weight = "q_norm"}, %gk: tensor<128xbf16> {mkc.weight = "k_norm"}, %cos: tensor<64xf32>, %sin: tensor<64xf32>, %vc: tensor<16x8x128xf32>, %pos: tensor<i64>) -> (tensor<16x128xf32>, tensor<8x128xf32>, tensor<16x8x128xf32>) {
  %h = "tg.rms_norm"(%x, %g) {axis = 0 : i64, epsilon = 1.0e-6 : f64} : (tensor<1024xf32>, tensor<1024xbf16>) -> tensor<1024xf32>
  %q = "tg.matmul"(%h, %wq) {transpose_b = true} : (tensor<1024xf32>, tensor<2048x1024xbf16>) -> tensor<2048xf32>
  %q2 = "tg.reshape"(%q) : (tensor<2048xf32>) -> tensor<16x128xf32>
  %qn = "tg.rms_norm"(%q2, %gq) {axis = 1 : i64, epsilon = 1.0e-6 : f64} : (tensor<16x128xf32>, tensor<128xbf16>) -> tensor<16x128xf32>
  %qr = "tg.rope"(%qn, %cos, %sin) : (tensor<16x128xf32>, tensor<64xf32>, tensor<64xf32>) -> tensor<16x128xf32>
  %k = "tg.matmul"(%h, %wk) {transpose_b = true} : (tensor<1024xf32>, tensor<1024x1024xbf16>) -> tensor<1024xf32>
  %k2 = "tg.reshape"(%k) : (tensor<1024xf32>) -> tensor<8x128xf32>
  %kn = "tg.rms_norm"(%k2, %gk) {axis = 1 : i64, epsilon = 1.0e-6 : f64} : (tensor<8x128xf32>, tensor<128xbf16>) -> tensor<8x128xf32>
  %kr = "tg.rope"(%kn, %cos, %sin) : (tensor<8x128xf32>, tensor<64xf32>, tensor<64xf32>) -> tensor<8x128xf32>
  %v = "tg.matmul"(%h, %wv) {transpose_b = true} : (tensor<1024xf32>, tensor<1024x1024xbf16>) -> tensor<1024xf32>
  %v2 = "tg.reshape"(%v) : (tensor<1024xf32>) -> tensor<8x128xf32>
  %vc2 = "tg.kv_append"(%vc, %v2, %pos) : (tensor<16x8x128xf32>, tensor<8x128xf32>, tensor<i64>) -> tensor<16x8x128xf32>
  return %qr, %kr, %vc2 : tensor<16x128xf32>, tensor<8x128xf32>, tensor<16x8x128xf32>
}

// CHECK-LABEL: func.func @f
// CHECK:       %0:3 = "fused.group"
// CHECK-NOT:   "tg.rope"
// CHECK:       "tg.rms_norm"(%{{.*}}) {axis = 0 : i64
// CHECK-NOT:   "tg.rms_norm"
// CHECK:       }) {kind = "qkv_rope"}
// CHECK-NEXT:  %9:2 = "fused.group"(%0#1, %arg6, %arg7, %arg8, %0#2, %arg5)
// CHECK-NEXT:  ^bb0
// CHECK-NEXT:    "tg.rms_norm"({{.*}}) {axis = 1 : i64{{.*}} -> tensor<8x128xf32>
// CHECK-NEXT:    "tg.rope"
// CHECK-NEXT:    "tg.rms_norm"({{.*}}) {axis = 1 : i64{{.*}} -> tensor<16x128xf32>
// CHECK-NEXT:    "tg.rope"
// CHECK-NEXT:    "fused.yield"
// CHECK-NEXT:  }) {kind = "rope"}
// CHECK-NEXT:  return %9#1, %9#0, %0#0
