// RUN: --pass-pipeline='builtin.module(attach-target{sms=16},split-attention{parts=4},fuse,tile{min-tile-bytes=4096})'
// Decode attention over a 64-position cache becomes 4 parts over runs of the context (tiles
// cut the parts apart, each reading the cache rows of its kv heads) and their combine,
// which fuse makes a prologue of the output projection (no task of its own: the
// projection waits for every part).
func.func @step(%x: tensor<32xf32>, %q: tensor<4x8xf32>, %pos: tensor<i64>,
                %kc: tensor<64x2x8xf32>, %vc: tensor<64x2x8xf32>,
                %wo: tensor<32x32xbf16> {mkc.weight = "o"}) -> tensor<32xf32> {
  %att = "tg.attention"(%q, %kc, %vc, %pos) {scale = 0.35 : f64} : (tensor<4x8xf32>, tensor<64x2x8xf32>, tensor<64x2x8xf32>, tensor<i64>) -> tensor<4x8xf32>
  %flat = "tg.reshape"(%att) : (tensor<4x8xf32>) -> tensor<32xf32>
  %o = "tg.matmul"(%flat, %wo) {transpose_b = true} : (tensor<32xf32>, tensor<32x32xbf16>) -> tensor<32xf32>
  %y = "tg.add"(%x, %o) : (tensor<32xf32>, tensor<32xf32>) -> tensor<32xf32>
  return %y : tensor<32xf32>
}
