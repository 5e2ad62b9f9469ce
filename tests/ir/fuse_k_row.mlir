// RUN: --pass-pipeline='builtin.module(fuse{k-row=true})'
// fuse_qk_norm_out_of_projection's layer with its attention, under `k-row`: attention takes
// the step's K row apart from the cache (a fifth operand) and computes it, and the query's
// norm and rope, in its own group; the q/k/v group writes the raw rows; the K row's own
// norm, rope and cache update form a light group after attention (it reads the cache's
// old rows, which that group then updates in place).
func.func @f(%x: tensor<1024xf32>, %g: tensor<1024xbf16> {mkc.weight = "in_norm"}, %wq: tensor<2048x1024xbf16> {mkc.weight = "q"}, %wk: tensor<1024x1024xbf16> {mkc.weight = "k"}, %wv: tensor<1024x1024xbf16> {mkc.weight = "v"}, %gq: tensor<128xbf16> {mkc.weight = "q_norm"}, %gk: tensor<128xbf16> {mkc.weight = "k_norm"}, %cos: tensor<64xf32>, %sin: tensor<64xf32>, %kc: tensor<16x8x128xf32>, %vc: tensor<16x8x128xf32>, %pos: tensor<i64>) -> (tensor<16x128xf32>, tensor<16x8x128xf32>, tensor<16x8x128xf32>) {
  %h = "tg.rms_norm"(%x, %g) {axis = 0 : i64, epsilon = 1.0e-6 : f64} : (tensor<1024xf32>, tensor<1024xbf16>) -> tensor<1024xf32>
  %q = "tg.matmul"(%h, %wq) {transpose_b = true} : (tensor<1024xf32>, tensor<2048x1024xbf16>) -> tensor<2048xf32>
  %q2 = "tg.reshape"(%q) : (tensor<2048xf32>) -> tensor<16x128xf32>
  %qn = "tg.rms_norm"(%q2, %gq) {axis = 1 : i64, epsilon = 1.0e-6 : f64} : (tensor<16x128xf32>, tensor<128xbf16>) -> tensor<16x128xf32>
  %qr = "tg.rope"(%qn, %cos, %sin) : (tensor<16x128xf32>, tensor<64xf32>, tensor<64xf32>) -> tensor<16x128xf32>
  %k = "tg.matmul"(%h, %wk) {transpose_b = true} : (tensor<1024xf32>, tensor<1024x1024xbf16>) -> tensor<1024xf32>
  %k2 = "tg.reshape"(%k) : (tensor<1024xf32>) -> tensor<8x128xf32>
  %kn = "tg.rms_norm"(%k2, %gk) {axis = 1 : i64, epsilon = 1.0e-6 : f64} : (tensor<8x128xf32>, tensor<128xbf16>) -> tensor<8x128xf32>
  %kr = "tg.rope"(%kn, %cos, %sin) : (tensor<8x128xf32>, tensor<64xf32>, tensor<64xf32>) -> tensor<8x128xf32>
  %kc2 = "tg.kv_append"(%kc, %kr, %pos) : (tensor<16x8x128xf32>, tensor<8x128xf32>, tensor<i64>) -> tensor<16x8x128xf32>
  %v = "tg.matmul"(%h, %wv) {transpose_b = true} : (tensor<1024xf32>, tensor<1024x1024xbf16>) -> tensor<1024xf32>
  %v2 = "tg.reshape"(%v) : (tensor<1024xf32>) -> tensor<8x128xf32>
  %vc2 = "tg.kv_append"(%vc, %v2, %pos) : (tensor<16x8x128xf32>, tensor<8x128xf32>, tensor<i64>) -> tensor<16x8x128xf32>
  %att = "tg.attention"(%qr, %kc2, %vc2, %pos) {scale = 0.08838834764831843 : f64} : (tensor<16x128xf32>, tensor<16x8x128xf32>, tensor<16x8x128xf32>, tensor<i64>) -> tensor<16x128xf32>
  return %att, %kc2, %vc2 : tensor<16x128xf32>, tensor<16x8x128xf32>, tensor<16x8x128xf32>
}

// CHECK-LABEL: func.func @f
// CHECK:       %0:3 = "fused.group"
// CHECK-NOT:   "tg.rope"
// CHECK:       "fused.yield"(%4, %6, %7)
// CHECK-NEXT:  }) {kind = "qkv_rope"}
// CHECK-NEXT:  %8 = "fused.group"(%0#2, %arg5, %arg7, %arg8, %0#1, %arg6, %arg9, %0#0, %arg11)
// CHECK-NEXT:  ^bb0
// CHECK-NEXT:    %9 = "tg.reshape"
// CHECK-NEXT:    %10 = "tg.rms_norm"(%9, %arg20) {axis = 1 : i64{{.*}} -> tensor<16x128xf32>
// CHECK-NEXT:    %11 = "tg.rope"(%10,
// CHECK-NEXT:    %12 = "tg.rms_norm"(%arg23, %arg24) {axis = 1 : i64{{.*}} -> tensor<8x128xf32>
// CHECK-NEXT:    %13 = "tg.rope"(%12,
// CHECK-NEXT:    %14 = "tg.attention"(%11, %arg25, %arg26, %arg27, %13)
// CHECK-NEXT:    "fused.yield"(%14)
// CHECK-NEXT:  }) {kind = "attention"}
// CHECK-NEXT:  %15 = "fused.group"(%0#1, %arg6, %arg7, %arg8, %arg9, %arg11)
// CHECK-NEXT:  ^bb0
// CHECK-NEXT:    "tg.rms_norm"
// CHECK-NEXT:    "tg.rope"
// CHECK-NEXT:    "tg.kv_append"
// CHECK-NEXT:    "fused.yield"
// CHECK-NEXT:  }) {kind = "rope"}
// CHECK-NEXT:  return %8, %15, %0#0
