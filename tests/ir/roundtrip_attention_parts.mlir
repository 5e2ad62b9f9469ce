// RUN:
func.func @f(%q: tensor<6x8xbf16>, %k: tensor<32x2x8xbf16>, %pos: tensor<i64>) -> tensor<6x8xbf16> {
  %p = "tg.attention_partial"(%q, %k, %k, %pos) {parts = 3 : i64, scale = 0.35 : f64} : (tensor<6x8xbf16>, tensor<32x2x8xbf16>, tensor<32x2x8xbf16>, tensor<i64>) -> tensor<3x6x10xf32>
  %o = "tg.attention_combine"(%p) : (tensor<3x6x10xf32>) -> tensor<6x8xbf16>
  return %o : tensor<6x8xbf16>
}

// The split attention ops print as they were written.
// CHECK:      module {
// CHECK-NEXT: func.func @f(%arg0: tensor<6x8xbf16>, %arg1: tensor<32x2x8xbf16>, %arg2: tensor<i64>) -> tensor<6x8xbf16> {
// CHECK-NEXT: %0 = "tg.attention_partial"(%arg0, %arg1, %arg1, %arg2) {parts = 3 : i64, scale = 0.35 : f64} : (tensor<6x8xbf16>, tensor<32x2x8xbf16>, tensor<32x2x8xbf16>, tensor<i64>) -> tensor<3x6x10xf32>
// CHECK-NEXT: %1 = "tg.attention_combine"(%0) : (tensor<3x6x10xf32>) -> tensor<6x8xbf16>
// CHECK-NEXT: return %1 : tensor<6x8xbf16>
// CHECK-NEXT: }
// CHECK-NEXT: }
