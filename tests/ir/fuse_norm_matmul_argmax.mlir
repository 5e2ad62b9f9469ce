// RUN: --pass-pipeline='builtin.module(fuse)' --pass-statistics
// The LM head of a step: the final rms_norm is a prologue of the head's matmul (every tile
// recomputes the small norm), and argmax, though a reduction over the matmul's whole
// output, is its epilogue (two-phase: per tile, then across tiles). The embedding row's
// gather and cast are a group of their own; the unused rope table is dropped.
func.func @f(%tok: tensor<i64>, %pos: tensor<i64>, %emb: tensor<256x64xbf16> {mkc.weight = "embed"}, %g: tensor<64xbf16> {mkc.weight = "norm"}) -> (tensor<64xf32>, tensor<i64>) {
  %row = "tg.gather"(%emb, %tok) {axis = 0 : i64} : (tensor<256x64xbf16>, tensor<i64>) -> tensor<64xbf16>
  %x = "tg.cast"(%row) : (tensor<64xbf16>) -> tensor<64xf32>
  %cs:2 = "tg.rope_cos_sin"(%pos) {dim = 16 : i64, theta = 10000.0 : f64} : (tensor<i64>) -> (tensor<8xf32>, tensor<8xf32>)
  %h = "tg.rms_norm"(%x, %g) {axis = 0 : i64, epsilon = 1.0e-6 : f64} : (tensor<64xf32>, tensor<64xbf16>) -> tensor<64xf32>
  %l = "tg.matmul"(%h, %emb) {transpose_b = true} : (tensor<64xf32>, tensor<256x64xbf16>) -> tensor<256xf32>
  %t = "tg.argmax"(%l) {axis = 0 : i64, keepdims = false} : (tensor<256xf32>) -> tensor<i64>
  return %x, %t : tensor<64xf32>, tensor<i64>
}

// CHECK-LABEL: func.func @f
// CHECK-NOT:   "tg.rope_cos_sin"
// CHECK:       %0 = "fused.group"(%arg2, %arg0) ({
// CHECK-NEXT:  ^bb0
// CHECK-NEXT:    "tg.gather"
// CHECK-NEXT:    "tg.cast"
// CHECK-NEXT:    "fused.yield"
// CHECK-NEXT:  }) {kind = "embed"}
// CHECK-NEXT:  %3 = "fused.group"(%0, %arg3, %arg2) ({
// CHECK-NEXT:  ^bb0
// CHECK-NEXT:    %[[N:[0-9]+]] = "tg.rms_norm"
// CHECK-NEXT:    %[[L:[0-9]+]] = "tg.matmul"(%[[N]],
// CHECK-NEXT:    %[[T:[0-9]+]] = "tg.argmax"(%[[L]])
// CHECK-NEXT:    "fused.yield"(%[[T]]) : (tensor<i64>) -> ()
// CHECK-NEXT:  }) {kind = "lm_head"}
// CHECK-NEXT:  return %0, %3
// CHECK:       (fused-groups) 2 :
// CHECK:       (fusion:gather-epilogue) 1
// CHECK-NEXT:  (fusion:matmul-epilogue) 1
// CHECK-NEXT:  (fusion:norm-prologue) 1
// CHECK-NEXT:  (ops-after) 6
// CHECK-NEXT:  (ops-before) 7
