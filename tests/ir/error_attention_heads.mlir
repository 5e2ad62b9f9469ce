// RUN:
func.func @f(%q: tensor<6x8xf32>, %k: tensor<16x4x8xf32>, %pos: tensor<i64>) -> tensor<6x8xf32> {
  %0 = "tg.attention"(%q, %k, %k, %pos) {scale = 0.35 : f64} : (tensor<6x8xf32>, tensor<16x4x8xf32>, tensor<16x4x8xf32>, tensor<i64>) -> tensor<6x8xf32>
  return %0 : tensor<6x8xf32>
}

// CHECK:      // exit 1
// CHECK-NEXT: error_attention_heads.mlir:3:8: error: 'tg.attention' op 6 query heads of dim 8 cannot share 4 kv heads of dim 8
// CHECK-NEXT: %0 = "tg.attention"(%q, %k, %k, %pos) {scale = 0.35 : f64} : (tensor<6x8xf32>, tensor<16x4x8xf32>, tensor<16x4x8xf32>, tensor<i64>) -> tensor<6x8xf32>
// CHECK-NEXT: ^
