// RUN:
func.func @step(%token: tensor<1xi64>, %embed: tensor<32x8xbf16> {mkc.weight = "model.embed_tokens.weight"}) -> tensor<8xbf16> {
  %norm = "tg.constant"() {value = #mkc.weight<"model.norm.weight">} : () -> tensor<8xbf16>
  %odd = "tg.constant"() {value = #mkc.weight<"onnx::MatMul_123">} : () -> tensor<8xbf16>
  %s = "tg.add"(%norm, %odd) : (tensor<8xbf16>, tensor<8xbf16>) -> tensor<8xbf16>
  return %s : tensor<8xbf16>
}

// Weight references print back, whatever their name.
// CHECK:      module {
// CHECK-NEXT: func.func @step(%arg0: tensor<1xi64>, %arg1: tensor<32x8xbf16> {mkc.weight = "model.embed_tokens.weight"}) -> tensor<8xbf16> {
// CHECK-NEXT: %0 = "tg.constant"() {value = #mkc.weight<"model.norm.weight">} : () -> tensor<8xbf16>
// CHECK-NEXT: %1 = "tg.constant"() {value = #mkc.weight<"onnx::MatMul_123">} : () -> tensor<8xbf16>
// CHECK-NEXT: %2 = "tg.add"(%0, %1) : (tensor<8xbf16>, tensor<8xbf16>) -> tensor<8xbf16>
// CHECK-NEXT: return %2 : tensor<8xbf16>
// CHECK-NEXT: }
// CHECK-NEXT: }
