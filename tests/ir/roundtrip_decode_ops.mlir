// RUN:
func.func @step(%tok: tensor<i64>, %pos: tensor<i64>, %kc: tensor<8x2x4xf32>, %vc: tensor<8x2x4xf32>, %emb: tensor<16x8xbf16> {mkc.weight = "embed"}, %wq: tensor<16x8xbf16> {mkc.weight = "wq"}, %wk: tensor<8x8xbf16> {mkc.weight = "wk"}, %ln: tensor<8xbf16> {mkc.weight = "ln"}) -> (tensor<4x4xf32>, tensor<8x2x4xf32>) {
  %row = "tg.gather"(%emb, %tok) {axis = 0 : i64} : (tensor<16x8xbf16>, tensor<i64>) -> tensor<8xbf16>
  %x = "tg.cast"(%row) : (tensor<8xbf16>) -> tensor<8xf32>
  %h = "tg.rms_norm"(%x, %ln) {axis = 0 : i64, epsilon = 1.0e-6 : f64} : (tensor<8xf32>, tensor<8xbf16>) -> tensor<8xf32>
  %q = "tg.matmul"(%h, %wq) {transpose_b = true} : (tensor<8xf32>, tensor<16x8xbf16>) -> tensor<16xf32>
  %k = "tg.matmul"(%h, %wk) {transpose_b = true} : (tensor<8xf32>, tensor<8x8xbf16>) -> tensor<8xf32>
  %q2 = "tg.reshape"(%q) : (tensor<16xf32>) -> tensor<4x4xf32>
  %k2 = "tg.reshape"(%k) : (tensor<8xf32>) -> tensor<2x4xf32>
  %cs:2 = "tg.rope_cos_sin"(%pos) {theta = 10000.0 : f64, dim = 4 : i64} : (tensor<i64>) -> (tensor<2xf32>, tensor<2xf32>)
  %qr = "tg.rope"(%q2, %cs#0, %cs#1) : (tensor<4x4xf32>, tensor<2xf32>, tensor<2xf32>) -> tensor<4x4xf32>
  %kr = "tg.rope"(%k2, %cs#0, %cs#1) {interleaved = true} : (tensor<2x4xf32>, tensor<2xf32>, tensor<2xf32>) -> tensor<2x4xf32>
  %kc2 = "tg.kv_append"(%kc, %kr, %pos) : (tensor<8x2x4xf32>, tensor<2x4xf32>, tensor<i64>) -> tensor<8x2x4xf32>
  %att = "tg.attention"(%qr, %kc2, %vc, %pos) {scale = 0.5 : f64} : (tensor<4x4xf32>, tensor<8x2x4xf32>, tensor<8x2x4xf32>, tensor<i64>) -> tensor<4x4xf32>
  return %att, %kc2 : tensor<4x4xf32>, tensor<8x2x4xf32>
}

// The decode ops print back (attributes sorted, multi-results as %N#i).
// CHECK:      module {
// CHECK-NEXT: func.func @step(%arg0: tensor<i64>, %arg1: tensor<i64>, %arg2: tensor<8x2x4xf32>, %arg3: tensor<8x2x4xf32>, %arg4: tensor<16x8xbf16> {mkc.weight = "embed"}, %arg5: tensor<16x8xbf16> {mkc.weight = "wq"}, %arg6: tensor<8x8xbf16> {mkc.weight = "wk"}, %arg7: tensor<8xbf16> {mkc.weight = "ln"}) -> (tensor<4x4xf32>, tensor<8x2x4xf32>) {
// CHECK-NEXT: %0 = "tg.gather"(%arg4, %arg0) {axis = 0 : i64} : (tensor<16x8xbf16>, tensor<i64>) -> tensor<8xbf16>
// CHECK-NEXT: %1 = "tg.cast"(%0) : (tensor<8xbf16>) -> tensor<8xf32>
// CHECK-NEXT: %2 = "tg.rms_norm"(%1, %arg7) {axis = 0 : i64, epsilon = 1.0e-6 : f64} : (tensor<8xf32>, tensor<8xbf16>) -> tensor<8xf32>
// CHECK-NEXT: %3 = "tg.matmul"(%2, %arg5) {transpose_b = true} : (tensor<8xf32>, tensor<16x8xbf16>) -> tensor<16xf32>
// CHECK-NEXT: %4 = "tg.matmul"(%2, %arg6) {transpose_b = true} : (tensor<8xf32>, tensor<8x8xbf16>) -> tensor<8xf32>
// CHECK-NEXT: %5 = "tg.reshape"(%3) : (tensor<16xf32>) -> tensor<4x4xf32>
// CHECK-NEXT: %6 = "tg.reshape"(%4) : (tensor<8xf32>) -> tensor<2x4xf32>
// CHECK-NEXT: %7:2 = "tg.rope_cos_sin"(%arg1) {dim = 4 : i64, theta = 10000.0 : f64} : (tensor<i64>) -> (tensor<2xf32>, tensor<2xf32>)
// CHECK-NEXT: %8 = "tg.rope"(%5, %7#0, %7#1) : (tensor<4x4xf32>, tensor<2xf32>, tensor<2xf32>) -> tensor<4x4xf32>
// CHECK-NEXT: %9 = "tg.rope"(%6, %7#0, %7#1) {interleaved = true} : (tensor<2x4xf32>, tensor<2xf32>, tensor<2xf32>) -> tensor<2x4xf32>
// CHECK-NEXT: %10 = "tg.kv_append"(%arg2, %9, %arg1) : (tensor<8x2x4xf32>, tensor<2x4xf32>, tensor<i64>) -> tensor<8x2x4xf32>
// CHECK-NEXT: %11 = "tg.attention"(%8, %10, %arg3, %arg1) {scale = 0.5 : f64} : (tensor<4x4xf32>, tensor<8x2x4xf32>, tensor<8x2x4xf32>, tensor<i64>) -> tensor<4x4xf32>
// CHECK-NEXT: return %11, %10 : tensor<4x4xf32>, tensor<8x2x4xf32>
// CHECK-NEXT: }
// CHECK-NEXT: }
