// RUN:
func.func @f(%q: tensor<6x8xf32>, %k: tensor<16x4x8xf32>, %pos: tensor<i64>) -> tensor<6x8xf32> {
  %0 = "tg.attention"(%q, %k, %k, %pos) {scale = 0.35 : f64} : (tensor<6x8xf32>, tensor<16x4x8xf32>, tensor<16x4x8xf32>, tensor<i64>) -> tensor<6x8xf32>
  return %0 : tensor<6x8xf32>
}
