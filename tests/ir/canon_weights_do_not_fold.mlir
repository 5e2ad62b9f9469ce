// RUN: --pass-pipeline='builtin.module(canonicalize)'
func.func @f() -> tensor<4xbf16> {
  %w = "tg.constant"() {value = #mkc.weight<"model.norm.weight">} : () -> tensor<4xbf16>
  %one = "tg.constant"() {value = dense<1.0> : tensor<4xbf16>} : () -> tensor<4xbf16>
  %a = "tg.add"(%w, %one) : (tensor<4xbf16>, tensor<4xbf16>) -> tensor<4xbf16>
  %b = "tg.mul"(%a, %one) : (tensor<4xbf16>, tensor<4xbf16>) -> tensor<4xbf16>
  return %b : tensor<4xbf16>
}

// A weight is no constant to fold: w + 1 stays (the `* 1` goes).
// CHECK-LABEL: func.func @f
// CHECK-NOT:   "tg.mul"
// CHECK:       %0 = "tg.constant"() {value = #mkc.weight<"model.norm.weight">}
// CHECK-NEXT:  %1 = "tg.constant"() {value = dense<1.0> : tensor<4xbf16>}
// CHECK-NEXT:  %2 = "tg.add"(%0, %1)
// CHECK-NEXT:  return %2
