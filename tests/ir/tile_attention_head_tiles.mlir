// RUN: --pass-pipeline='builtin.module(attach-target{sms=8},split-attention{parts=2},fuse,tile)' --pass-statistics
// An attention block on 8 SMs, attention split in 2 parts: each part is cut per query head
// (2 parts x 4 heads, one wave), a tile waiting for the v and k caches (events 1, 2) and
// its head's q rows (event 4 or 5). The combine is cut per head, each run on the last
// signal of its head's parts: it reuses no memory that a step feeding the parts (q/k/v)
// read, so it has no other wait. The output projection waits on the combine's event and on
// all of q (event 3: it overwrites memory both q tiles read); the parts' events it would
// wait on too (it overwrites q's rows) are implied and pruned (tile_no_prune_waits keeps
// them).
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
// The caches are stored heads-first, positions innermost.
// CHECK:       "task.place"() {arg = 2 : i64, buffer = "kv", offset = 16384 : i64, perm = [1 : i64, 2 : i64, 0 : i64]}
// CHECK-NEXT:  "task.place"() {arg = 3 : i64, buffer = "kv", offset = 0 : i64, perm = [1 : i64, 2 : i64, 0 : i64]}
// CHECK:       kind = "qkv_rope", output = 2 : i64, {{.*}} signals = [3 : i64, 4 : i64], tile = [#task.box<0:2, 0:32>]
// CHECK-NEXT:  kind = "qkv_rope", output = 2 : i64, {{.*}} signals = [3 : i64, 5 : i64], tile = [#task.box<2:4, 0:32>]
// A part of a head reads its KV head's rows of both caches (positions 0..64 of 2 KV heads).
// CHECK-NEXT:  kind = "attention", {{.*}} reads = [#task.range<kv, 0, 8192>, #task.range<kv, 16384, 24576>, {{.*}} signals = [6 : i64], tile = [#task.box<0:1, 0:1, 0:34>], waits = [1 : i64, 2 : i64, 4 : i64]
// CHECK-NEXT:  kind = "attention", {{.*}} signals = [7 : i64], tile = [#task.box<0:1, 1:2, 0:34>], waits = [1 : i64, 2 : i64, 4 : i64]
// CHECK-NEXT:  kind = "attention", {{.*}} reads = [#task.range<kv, 8192, 16384>, #task.range<kv, 24576, 32768>, {{.*}} signals = [8 : i64], tile = [#task.box<0:1, 2:3, 0:34>], waits = [1 : i64, 2 : i64, 5 : i64]
// CHECK-NEXT:  kind = "attention", {{.*}} signals = [9 : i64], tile = [#task.box<0:1, 3:4, 0:34>], waits = [1 : i64, 2 : i64, 5 : i64]
// CHECK-NEXT:  kind = "attention", {{.*}} signals = [6 : i64], tile = [#task.box<1:2, 0:1, 0:34>], waits = [1 : i64, 2 : i64, 4 : i64]
// CHECK-NEXT:  kind = "attention", {{.*}} signals = [7 : i64], tile = [#task.box<1:2, 1:2, 0:34>]
// CHECK-NEXT:  kind = "attention", {{.*}} signals = [8 : i64], tile = [#task.box<1:2, 2:3, 0:34>]
// CHECK-NEXT:  kind = "attention", {{.*}} signals = [9 : i64], tile = [#task.box<1:2, 3:4, 0:34>]
// CHECK-NEXT:  kind = "attention_combine", on_last_signal = true, {{.*}} tile = [#task.box<0:32>], waits = [6 : i64]
// CHECK-NEXT:  kind = "attention_combine", on_last_signal = true, {{.*}} tile = [#task.box<32:64>], waits = [7 : i64]
// CHECK-NEXT:  kind = "attention_combine", on_last_signal = true, {{.*}} tile = [#task.box<64:96>], waits = [8 : i64]
// CHECK-NEXT:  kind = "attention_combine", on_last_signal = true, {{.*}} tile = [#task.box<96:128>], waits = [9 : i64]
// CHECK-NEXT:  kind = "proj_residual", {{.*}} tile = [#task.box<0:64>], waits = [3 : i64, 10 : i64], writes = [#task.range<arena, 0, 256>]
// CHECK-NEXT:  kind = "proj_residual", {{.*}} tile = [#task.box<64:128>], waits = [3 : i64, 10 : i64]
// CHECK:       'tile'
// CHECK-NEXT:  (tasks) 20 :
// CHECK-NEXT:  (events) 11 :
