// RUN: --pass-pipeline='builtin.module(attach-target{sms=8},split-attention{parts=2},fuse,tile{prune-waits=false})' --pass-statistics
// tile_attention_head_tiles with prune-waits=false: the waits for the reuse of memory stay
// where another wait of the task implies them. An output projection tile overwrites memory
// the k task read (event 2: the parts waited on it) beside all of q's (event 3).
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

// CHECK-LABEL: "task.graph"
// CHECK:       kind = "attention", {{.*}} tile = [#task.box<0:1, 0:1, 0:34>], waits = [1 : i64, 2 : i64, 4 : i64]
// CHECK:       kind = "attention_combine", on_last_signal = true, {{.*}} tile = [#task.box<0:32>], waits = [6 : i64]
// CHECK-NEXT:  kind = "attention_combine", on_last_signal = true, {{.*}} tile = [#task.box<32:64>], waits = [7 : i64]
// CHECK-NEXT:  kind = "attention_combine", on_last_signal = true, {{.*}} tile = [#task.box<64:96>], waits = [8 : i64]
// CHECK-NEXT:  kind = "attention_combine", on_last_signal = true, {{.*}} tile = [#task.box<96:128>], waits = [9 : i64]
// CHECK-NEXT:  kind = "proj_residual", {{.*}} tile = [#task.box<0:64>], waits = [2 : i64, 3 : i64, 10 : i64], writes = [#task.range<arena, 0, 256>]
// CHECK-NEXT:  kind = "proj_residual", {{.*}} tile = [#task.box<64:128>], waits = [2 : i64, 3 : i64, 10 : i64], writes = [#task.range<arena, 256, 512>]
