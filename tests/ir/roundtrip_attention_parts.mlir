// RUN:
func.func @f(%q: tensor<6x8xbf16>, %k: tensor<32x2x8xbf16>, %pos: tensor<i64>) -> tensor<6x8xbf16> {
  %p = "tg.attention_partial"(%q, %k, %k, %pos) {parts = 3 : i64, scale = 0.35 : f64} : (tensor<6x8xbf16>, tensor<32x2x8xbf16>, tensor<32x2x8xbf16>, tensor<i64>) -> tensor<3x6x10xf32>
  %o = "tg.attention_combine"(%p) : (tensor<3x6x10xf32>) -> tensor<6x8xbf16>
  return %o : tensor<6x8xbf16>
}
