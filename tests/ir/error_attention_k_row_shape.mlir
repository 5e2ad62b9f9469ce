// RUN:
func.func @f(%q: tensor<4x8xf32>, %k: tensor<16x2x8xf32>, %row: tensor<4x8xf32>, %pos: tensor<i64>) -> tensor<4x8xf32> {
  %0 = "tg.attention"(%q, %k, %k, %pos, %row) {scale = 0.35 : f64} : (tensor<4x8xf32>, tensor<16x2x8xf32>, tensor<16x2x8xf32>, tensor<i64>, tensor<4x8xf32>) -> tensor<4x8xf32>
  return %0 : tensor<4x8xf32>
}

// CHECK:      // exit 1
// CHECK-NEXT: error_attention_k_row_shape.mlir:3:8: error: 'tg.attention' op the step's K row must be [2, 8] of the cache's element type, not tensor<4x8xf32>
// CHECK-NEXT: %0 = "tg.attention"(%q, %k, %k, %pos, %row)
// CHECK-NEXT: ^
