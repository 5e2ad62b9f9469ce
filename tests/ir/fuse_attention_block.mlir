// RUN: --pass-pipeline='builtin.module(fuse)' --pass-statistics
// An attention block (Llama-style, 4 query heads sharing 2 KV heads): the input norm, q/k/v
// (one pass over the normed input), their reshapes, rope and the KV appends are one
// qkv_rope group; attention and its reshape one group; the output projection and the
// residual add another. The rope table (no embedding gather to join) is a group alone.
func.func @step(%x: tensor<128xf32>, %pos: tensor<i64>,
                %kc: tensor<64x2x32xf32>, %vc: tensor<64x2x32xf32>,
                %wn: tensor<128xbf16> {mkc.weight = "norm"},
                %wq: tensor<128x128xbf16> {mkc.weight = "q"},
                %wk: tensor<64x128xbf16> {mkc.weight = "k"},
                %wv: tensor<64x128xbf16> {mkc.weight = "v"},
                %wo: tensor<128x128xbf16> {mkc.weight = "o"})
    -> (tensor<128xf32>, tensor<64x2x32xf32>, tensor<64x2x32xf32>) {
  %cs:2 = "tg.rope_cos_sin"(%pos) {dim = 32 : i64, theta = 10000.0 : f64} : (tensor<i64>) -> (tensor<16xf32>, tensor<16xf32>)
  %h = "tg.rms_norm"(%x, %wn) {axis = 0 : i64, epsilon = 1.0e-6 : f64} : (tensor<128xf32>, tensor<128xbf16>) -> tensor<128xf32>
  %q = "tg.matmul"(%h, %wq) {transpose_b = true} : (tensor<128xf32>, tensor<128x128xbf16>) -> tensor<128xf32>
  %k = "tg.matmul"(%h, %wk) {transpose_b = true} : (tensor<128xf32>, tensor<64x128xbf16>) -> tensor<64xf32>
  %v = "tg.matmul"(%h, %wv) {transpose_b = true} : (tensor<128xf32>, tensor<64x128xbf16>) -> tensor<64xf32>
  %q2 = "tg.reshape"(%q) : (tensor<128xf32>) -> tensor<4x32xf32>
  %k2 = "tg.reshape"(%k) : (tensor<64xf32>) -> tensor<2x32xf32>
  %v2 = "tg.reshape"(%v) : (tensor<64xf32>) -> tensor<2x32xf32>
  %qr = "tg.rope"(%q2, %cs#0, %cs#1) : (tensor<4x32xf32>, tensor<16xf32>, tensor<16xf32>) -> tensor<4x32xf32>
  %kr = "tg.rope"(%k2, %cs#0, %cs#1) : (tensor<2x32xf32>, tensor<16xf32>, tensor<16xf32>) -> tensor<2x32xf32>
  %kc2 = "tg.kv_append"(%kc, %kr, %pos) : (tensor<64x2x32xf32>, tensor<2x32xf32>, tensor<i64>) -> tensor<64x2x32xf32>
  %vc2 = "tg.kv_append"(%vc, %v2, %pos) : (tensor<64x2x32xf32>, tensor<2x32xf32>, tensor<i64>) -> tensor<64x2x32xf32>
  %att = "tg.attention"(%qr, %kc2, %vc2, %pos) {scale = 0.17677669529663687 : f64} : (tensor<4x32xf32>, tensor<64x2x32xf32>, tensor<64x2x32xf32>, tensor<i64>) -> tensor<4x32xf32>
  %flat = "tg.reshape"(%att) : (tensor<4x32xf32>) -> tensor<128xf32>
  %o = "tg.matmul"(%flat, %wo) {transpose_b = true} : (tensor<128xf32>, tensor<128x128xbf16>) -> tensor<128xf32>
  %y = "tg.add"(%x, %o) : (tensor<128xf32>, tensor<128xf32>) -> tensor<128xf32>
  return %y, %kc2, %vc2 : tensor<128xf32>, tensor<64x2x32xf32>, tensor<64x2x32xf32>
}

// CHECK-LABEL: func.func @step
// CHECK:       %0:2 = "fused.group"(%arg1) ({
// CHECK-NEXT:  ^bb0
// CHECK-NEXT:    "tg.rope_cos_sin"
// CHECK-NEXT:    "fused.yield"
// CHECK-NEXT:  }) {kind = "elementwise"}
// CHECK-NEXT:  %2:3 = "fused.group"
// CHECK-NEXT:  ^bb0
// CHECK-NEXT:    "tg.rms_norm"
// CHECK-NEXT:    "tg.matmul"({{.*}}) -> tensor<64xf32>
// CHECK-NEXT:    "tg.reshape"
// CHECK-NEXT:    "tg.kv_append"
// CHECK-NEXT:    "tg.matmul"({{.*}}) -> tensor<64xf32>
// CHECK-NEXT:    "tg.reshape"
// CHECK-NEXT:    "tg.rope"
// CHECK-NEXT:    "tg.kv_append"
// CHECK-NEXT:    "tg.matmul"({{.*}}) -> tensor<128xf32>
// CHECK-NEXT:    "tg.reshape"
// CHECK-NEXT:    "tg.rope"
// CHECK-NEXT:    "fused.yield"
// CHECK-NEXT:  }) {kind = "qkv_rope"}
// CHECK-NEXT:  %14 = "fused.group"(%2#2, %2#1, %2#0, %arg1) ({
// CHECK-NEXT:  ^bb0
// CHECK-NEXT:    "tg.attention"
// CHECK-NEXT:    "tg.reshape"
// CHECK-NEXT:    "fused.yield"
// CHECK-NEXT:  }) {kind = "attention"}
// CHECK-NEXT:  %17 = "fused.group"(%14, %arg8, %arg0) ({
// CHECK-NEXT:  ^bb0
// CHECK-NEXT:    "tg.matmul"
// CHECK-NEXT:    "tg.add"
// CHECK-NEXT:    "fused.yield"
// CHECK-NEXT:  }) {kind = "proj_residual"}
// The caches come back from the qkv_rope group.
// CHECK-NEXT:  return %17, %2#1, %2#0
// CHECK:       (fused-groups) 4 :
// CHECK:       (fusion:attention-epilogue) 1
// CHECK-NEXT:  (fusion:epilogue-chain) 4
// CHECK-NEXT:  (fusion:horizontal-merge) 2
// CHECK-NEXT:  (fusion:matmul-epilogue) 4
// CHECK-NEXT:  (fusion:norm-prologue) 1
