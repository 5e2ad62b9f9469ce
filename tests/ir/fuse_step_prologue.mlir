// RUN: --pass-pipeline='builtin.module(fuse)' --pass-statistics
// The rope table computed from the position joins the embedding gather's group: the
// first task of a step computes both.
func.func @f(%tok: tensor<i64>, %pos: tensor<i64>, %emb: tensor<256x64xbf16> {mkc.weight = "embed"}, %w: tensor<64x64xbf16> {mkc.weight = "w"}) -> (tensor<64xf32>, tensor<8xf32>, tensor<8xf32>) {
  %row = "tg.gather"(%emb, %tok) {axis = 0 : i64} : (tensor<256x64xbf16>, tensor<i64>) -> tensor<64xbf16>
  %x = "tg.cast"(%row) : (tensor<64xbf16>) -> tensor<64xf32>
  %cs:2 = "tg.rope_cos_sin"(%pos) {dim = 16 : i64, theta = 10000.0 : f64} : (tensor<i64>) -> (tensor<8xf32>, tensor<8xf32>)
  %y = "tg.matmul"(%x, %w) {transpose_b = true} : (tensor<64xf32>, tensor<64x64xbf16>) -> tensor<64xf32>
  return %y, %cs#0, %cs#1 : tensor<64xf32>, tensor<8xf32>, tensor<8xf32>
}

// CHECK-LABEL: func.func @f
// CHECK:       %0:3 = "fused.group"(%arg1, %arg2, %arg0) ({
// CHECK-NEXT:  ^bb0
// CHECK-NEXT:    "tg.rope_cos_sin"
// CHECK-NEXT:    "tg.gather"
// CHECK-NEXT:    "tg.cast"
// CHECK-NEXT:    "fused.yield"
// CHECK-NEXT:  }) {kind = "embed"}
// CHECK-NEXT:  %4 = "fused.group"(%0#2, %arg3) ({
// CHECK:       return %4, %0#0, %0#1
// CHECK:       (fused-groups) 2 :
// CHECK:       (fusion:gather-epilogue) 1
// CHECK-NEXT:  (fusion:step-prologue) 1
