// RUN: --pass-pipeline='builtin.module(split-attention{parts=-1})'
// A negative part count is refused before any IR is touched.
func.func @f(%q: tensor<4x8xf32>, %kc: tensor<64x2x8xf32>, %pos: tensor<i64>) -> tensor<4x8xf32> {
  %a = "tg.attention"(%q, %kc, %kc, %pos) {scale = 0.35 : f64} : (tensor<4x8xf32>, tensor<64x2x8xf32>, tensor<64x2x8xf32>, tensor<i64>) -> tensor<4x8xf32>
  return %a : tensor<4x8xf32>
}

// CHECK:      // exit 1
// CHECK-NEXT: pipeline:1:16: error: pass 'split-attention': parts must be 0 (automatic) or more, not -1
// CHECK-NEXT: builtin.module(split-attention{parts=-1})
// CHECK-NEXT: ^
