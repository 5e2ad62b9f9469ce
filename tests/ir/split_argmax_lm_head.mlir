// RUN: --pass-pipeline='builtin.module(attach-target{sms=8},split-argmax,fuse)' --pass-statistics
// The greedy token's argmax over 2048 logits: 8 parts (the SMs) of 256 (at least min-run,
// a multiple of 4), their winners, then the winner of the winners. Each phase is a group of
// its own; the LM head's product keeps the logits as its one result.
func.func @f(%h: tensor<64xf32>, %w: tensor<2048x64xbf16> {mkc.weight = "head"}) -> (tensor<2048xf32>, tensor<i64>) {
  %l = "tg.matmul"(%h, %w) {transpose_b = true} : (tensor<64xf32>, tensor<2048x64xbf16>) -> tensor<2048xf32>
  %t = "tg.argmax"(%l) {axis = 0 : i64, keepdims = false} : (tensor<2048xf32>) -> tensor<i64>
  return %l, %t : tensor<2048xf32>, tensor<i64>
}

// CHECK-LABEL: func.func @f
// CHECK:       %[[L:[0-9]+]] = "fused.group"(%arg0, %arg1) ({
// CHECK:         "tg.matmul"
// CHECK-NOT:     "tg.argmax"
// CHECK:       }) {kind = "lm_head"}
// CHECK-NEXT:  %[[P:[0-9]+]] = "fused.group"(%[[L]]) ({
// CHECK:         "tg.argmax_partial"({{.*}}) {parts = 8 : i64} : (tensor<2048xf32>) -> tensor<8x2xf32>
// CHECK:       }) {kind = "argmax"}
// CHECK-NEXT:  %[[C:[0-9]+]] = "fused.group"(%[[P]]) ({
// CHECK:         "tg.argmax_combine"({{.*}}) : (tensor<8x2xf32>) -> tensor<i64>
// CHECK:       }) {kind = "argmax_combine"}
// CHECK-NEXT:  return %[[L]], %[[C]]
// CHECK:       'split-argmax'
// CHECK-NEXT:    (split) 1 : argmax ops split into parts
// CHECK:         (fused-groups) 3
