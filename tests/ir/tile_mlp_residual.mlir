// RUN: --pass-pipeline='builtin.module(attach-target{sms=4},fuse,tile{min-tile-bytes=4096},schedule)'
// An MLP block with a residual: fused into gate/up and down groups, each cut into tiles
// over its output rows; a down tile reads all of the MLP activation (one counter) and its
// own slice of the residual.
func.func @step(%x: tensor<64xf32>,
                %wn: tensor<64xbf16> {mkc.weight = "n"},
                %wg: tensor<96x64xbf16> {mkc.weight = "g"},
                %wu: tensor<96x64xbf16> {mkc.weight = "u"},
                %wd: tensor<64x96xbf16> {mkc.weight = "d"}) -> tensor<64xf32> {
  %h = "tg.rms_norm"(%x, %wn) {axis = 0 : i64, epsilon = 1.0e-6 : f64} : (tensor<64xf32>, tensor<64xbf16>) -> tensor<64xf32>
  %g = "tg.matmul"(%h, %wg) {transpose_b = true} : (tensor<64xf32>, tensor<96x64xbf16>) -> tensor<96xf32>
  %s = "tg.silu"(%g) : (tensor<96xf32>) -> tensor<96xf32>
  %u = "tg.matmul"(%h, %wu) {transpose_b = true} : (tensor<64xf32>, tensor<96x64xbf16>) -> tensor<96xf32>
  %m = "tg.mul"(%u, %s) : (tensor<96xf32>, tensor<96xf32>) -> tensor<96xf32>
  %d = "tg.matmul"(%m, %wd) {transpose_b = true} : (tensor<96xf32>, tensor<64x96xbf16>) -> tensor<64xf32>
  %y = "tg.add"(%x, %d) : (tensor<64xf32>, tensor<64xf32>) -> tensor<64xf32>
  return %y : tensor<64xf32>
}
