// RUN: --pass-pipeline='builtin.module(split-attention{parts=8})'
// A 12-position cache holds two blocks of 8 positions: at most two parts, whatever the
// option asks. A cache of one block (the second op) is not split at all.
func.func @f(%q: tensor<4x8xf32>, %kc: tensor<12x2x8xf32>, %vc: tensor<12x2x8xf32>,
             %k8: tensor<8x2x8xf32>, %pos: tensor<i64>) -> (tensor<4x8xf32>, tensor<4x8xf32>) {
  %a = "tg.attention"(%q, %kc, %vc, %pos) {scale = 0.35 : f64} : (tensor<4x8xf32>, tensor<12x2x8xf32>, tensor<12x2x8xf32>, tensor<i64>) -> tensor<4x8xf32>
  %b = "tg.attention"(%q, %k8, %k8, %pos) {scale = 0.35 : f64} : (tensor<4x8xf32>, tensor<8x2x8xf32>, tensor<8x2x8xf32>, tensor<i64>) -> tensor<4x8xf32>
  return %a, %b : tensor<4x8xf32>, tensor<4x8xf32>
}

// CHECK-LABEL: func.func @f
// CHECK-NEXT:  %0 = "tg.attention_partial"(%arg0, %arg1, %arg2, %arg4) {parts = 2 : i64, scale = 0.35 : f64} {{.*}} -> tensor<2x4x10xf32>
// CHECK-NEXT:  %1 = "tg.attention_combine"(%0) : (tensor<2x4x10xf32>) -> tensor<4x8xf32>
// CHECK-NEXT:  %2 = "tg.attention"(%arg0, %arg3, %arg3, %arg4) {scale = 0.35 : f64}
// CHECK-NEXT:  return %1, %2
