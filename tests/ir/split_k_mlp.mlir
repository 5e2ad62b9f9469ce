// RUN: --pass-pipeline='builtin.module(split-k,fuse)'
// An MLP's down projection and its residual add become a product that accumulates onto the
// residual (tg.matmul_acc), in the group of its gate/up products: kind "mlp".
func.func @f(%r: tensor<64xf32>, %g: tensor<64xbf16> {mkc.weight = "g"}, %wg: tensor<256x64xbf16> {mkc.weight = "wg"}, %wu: tensor<256x64xbf16> {mkc.weight = "wu"}, %wd: tensor<64x256xbf16> {mkc.weight = "wd"}, %wo: tensor<64x64xbf16> {mkc.weight = "wo"}) -> tensor<64xf32> {
  %o = "tg.matmul"(%r, %wo) {transpose_b = true} : (tensor<64xf32>, tensor<64x64xbf16>) -> tensor<64xf32>
  %r1 = "tg.add"(%r, %o) : (tensor<64xf32>, tensor<64xf32>) -> tensor<64xf32>
  %n = "tg.rms_norm"(%r1, %g) {axis = 0 : i64, epsilon = 1.0e-6 : f64} : (tensor<64xf32>, tensor<64xbf16>) -> tensor<64xf32>
  %a = "tg.matmul"(%n, %wg) {transpose_b = true} : (tensor<64xf32>, tensor<256x64xbf16>) -> tensor<256xf32>
  %s = "tg.silu"(%a) : (tensor<256xf32>) -> tensor<256xf32>
  %b = "tg.matmul"(%n, %wu) {transpose_b = true} : (tensor<64xf32>, tensor<256x64xbf16>) -> tensor<256xf32>
  %h = "tg.mul"(%b, %s) : (tensor<256xf32>, tensor<256xf32>) -> tensor<256xf32>
  %d = "tg.matmul"(%h, %wd) {transpose_b = true} : (tensor<256xf32>, tensor<64x256xbf16>) -> tensor<64xf32>
  %y = "tg.add"(%r1, %d) : (tensor<64xf32>, tensor<64xf32>) -> tensor<64xf32>
  return %y : tensor<64xf32>
}

// CHECK-LABEL: func.func @f
// CHECK:       "tg.add"
// CHECK:       kind = "proj_residual"
// CHECK:       "fused.group"(%0,
// CHECK:       "tg.rms_norm"
// CHECK:       "tg.silu"
// CHECK:       %[[H:[0-9]+]] = "tg.mul"
// CHECK-NEXT:  "tg.matmul_acc"(%[[H]], %arg12, %arg8) : (tensor<256xf32>, tensor<64x256xbf16>, tensor<64xf32>) -> tensor<64xf32>
// CHECK-NEXT:  "fused.yield"
// CHECK-NEXT:  kind = "mlp"
// CHECK-NOT:   "tg.add"
// CHECK:       return
