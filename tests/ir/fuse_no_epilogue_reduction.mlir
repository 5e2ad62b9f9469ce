// RUN: --pass-pipeline='builtin.module(fuse)' --pass-statistics
// An rms_norm of a matmul's output is no epilogue of it: the norm reduces over the whole
// output, which no tile holds. It becomes the next matmul's prologue instead.
func.func @f(%x: tensor<64xf32>, %w1: tensor<64x64xbf16> {mkc.weight = "w1"}, %g: tensor<64xbf16> {mkc.weight = "g"}, %w2: tensor<32x64xbf16> {mkc.weight = "w2"}) -> tensor<32xf32> {
  %a = "tg.matmul"(%x, %w1) {transpose_b = true} : (tensor<64xf32>, tensor<64x64xbf16>) -> tensor<64xf32>
  %n = "tg.rms_norm"(%a, %g) {axis = 0 : i64, epsilon = 1.0e-6 : f64} : (tensor<64xf32>, tensor<64xbf16>) -> tensor<64xf32>
  %b = "tg.matmul"(%n, %w2) {transpose_b = true} : (tensor<64xf32>, tensor<32x64xbf16>) -> tensor<32xf32>
  return %b : tensor<32xf32>
}

// CHECK-LABEL: func.func @f
// CHECK:       %0 = "fused.group"(%arg0, %arg1) ({
// CHECK-NOT:   "tg.rms_norm"
// CHECK:       "tg.matmul"
// CHECK-NOT:   "tg.rms_norm"
// CHECK:       }) {kind = "lm_head"}
// CHECK-NEXT:  %2 = "fused.group"(%0, %arg2, %arg3) ({
// CHECK-NEXT:  ^bb0
// CHECK-NEXT:    %[[N:[0-9]+]] = "tg.rms_norm"
// CHECK-NEXT:    "tg.matmul"(%[[N]],
// CHECK:       (fused-groups) 2 :
// CHECK-NOT:   fusion:matmul-epilogue
// CHECK:       (fusion:norm-prologue) 1
// CHECK-NOT:   fusion:
