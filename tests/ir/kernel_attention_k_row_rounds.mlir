// RUN: --pass-pipeline='builtin.module(attach-target{sms=4},split-attention{parts=2},fuse{k-row=true},tile,schedule,select-kernels{attention-online=false})'
// kernel_attention_k_row with attention-online=false: the three rounds after the prologue,
// the statistics round putting the row's score in place of the cache's row pos.
func.func @step(%x: tensor<128xf32>, %pos: tensor<i64>,
                %kc: tensor<64x2x32xf32>, %vc: tensor<64x2x32xf32>,
                %wn: tensor<128xbf16> {mkc.weight = "norm"},
                %wq: tensor<128x128xbf16> {mkc.weight = "q"},
                %wk: tensor<64x128xbf16> {mkc.weight = "k"},
                %wv: tensor<64x128xbf16> {mkc.weight = "v"},
                %gq: tensor<32xbf16> {mkc.weight = "q_norm"},
                %gk: tensor<32xbf16> {mkc.weight = "k_norm"},
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
  %qn = "tg.rms_norm"(%q2, %gq) {axis = 1 : i64, epsilon = 1.0e-6 : f64} : (tensor<4x32xf32>, tensor<32xbf16>) -> tensor<4x32xf32>
  %kn = "tg.rms_norm"(%k2, %gk) {axis = 1 : i64, epsilon = 1.0e-6 : f64} : (tensor<2x32xf32>, tensor<32xbf16>) -> tensor<2x32xf32>
  %qr = "tg.rope"(%qn, %cs#0, %cs#1) : (tensor<4x32xf32>, tensor<16xf32>, tensor<16xf32>) -> tensor<4x32xf32>
  %kr = "tg.rope"(%kn, %cs#0, %cs#1) : (tensor<2x32xf32>, tensor<16xf32>, tensor<16xf32>) -> tensor<2x32xf32>
  %kc2 = "tg.kv_append"(%kc, %kr, %pos) : (tensor<64x2x32xf32>, tensor<2x32xf32>, tensor<i64>) -> tensor<64x2x32xf32>
  %vc2 = "tg.kv_append"(%vc, %v2, %pos) : (tensor<64x2x32xf32>, tensor<2x32xf32>, tensor<i64>) -> tensor<64x2x32xf32>
  %att = "tg.attention"(%qr, %kc2, %vc2, %pos) {scale = 0.17677669529663687 : f64} : (tensor<4x32xf32>, tensor<64x2x32xf32>, tensor<64x2x32xf32>, tensor<i64>) -> tensor<4x32xf32>
  %flat = "tg.reshape"(%att) : (tensor<4x32xf32>) -> tensor<128xf32>
  %o = "tg.matmul"(%flat, %wo) {transpose_b = true} : (tensor<128xf32>, tensor<128x128xbf16>) -> tensor<128xf32>
  %y = "tg.add"(%x, %o) : (tensor<128xf32>, tensor<128xf32>) -> tensor<128xf32>
  return %y, %kc2, %vc2 : tensor<128xf32>, tensor<64x2x32xf32>, tensor<64x2x32xf32>
}

// CHECK-LABEL: "kernel.plan"
// CHECK-NOT:   "online"
// CHECK:         {index = 0 : i64, name = "tg.reshape", result = #kernel.place<view>}
// CHECK-NEXT:    {index = 1 : i64, name = "tg.rms_norm", result = #kernel.place<shared, 0, 512>, stats = "warps"
// CHECK-NEXT:    {index = 2 : i64, name = "tg.rope", result = #kernel.place<shared, 656, 512>}
// CHECK-NEXT:    {index = 3 : i64, name = "tg.rms_norm", result = #kernel.place<shared, 1168, 256>, stats = "warps"
// CHECK-NEXT:    {index = 4 : i64, name = "tg.rope", result = #kernel.place<shared, 1568, 256>}
// CHECK-NEXT:    {attention = "rounds", index = 5 : i64, lanes = 2 : i64, name = "tg.attention_partial", result = #kernel.place<direct>, scores = "group"
// CHECK-NEXT:  }) {direct = true, id = 6 : i64, kind = "attention"
// CHECK-NOT:   "online"
