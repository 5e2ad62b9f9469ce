// RUN: --pass-pipeline='builtin.module(attach-target{sms=8},split-attention{parts=2},fuse,tile,schedule,select-kernels{smem-scratch=0})' --pass-statistics
// smem-scratch=0: no shared memory for intermediate values: every code's temporaries and
// results go to global scratch (a window of the tile where a value is cut), and norms
// cannot stage their weight.
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

// CHECK-LABEL: "kernel.plan"
// CHECK-NOT:   #kernel.place<shared
// CHECK:       name = "tg.rms_norm", result = #kernel.place<global, 0, 512, window>, stats = "cta", temps = [#kernel.place<global, 512, 16>, #kernel.place<global, 528, 64>], weight = "global"}
// CHECK-NEXT:  matvec = "row", name = "tg.matmul", preload = 1 : i64, result = #kernel.place<global, 592, 256, window>
// CHECK:       {attention = "rounds", {{.*}} temps = [#kernel.place<global, 0, 128, window>, #kernel.place<global, 128, 16, window>]
// CHECK-NEXT:  }) {direct = true, id = 5 : i64, kind = "attention", scratch = 144 : i64, smem = 0 : i64,
// CHECK-NOT:   #kernel.place<shared
// CHECK:       smem_scratch = 0 : i64
// CHECK:       'select-kernels'
// CHECK-NEXT:  (codes) 8 :
// CHECK-NEXT:  (global-scratch-codes) 8 :
