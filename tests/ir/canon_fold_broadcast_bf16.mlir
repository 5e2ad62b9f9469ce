// RUN: --pass-pipeline='builtin.module(canonicalize)'
func.func @f() -> tensor<2x3xbf16> {
  %col = "tg.constant"() {value = dense<[[1.0], [2.0]]> : tensor<2x1xbf16>} : () -> tensor<2x1xbf16>
  %row = "tg.constant"() {value = dense<[0.1, 0.2, 0.3]> : tensor<3xbf16>} : () -> tensor<3xbf16>
  %s = "tg.add"(%col, %row) : (tensor<2x1xbf16>, tensor<3xbf16>) -> tensor<2x3xbf16>
  return %s : tensor<2x3xbf16>
}

// The [2x1] + [3] sum broadcasts to [2x3], rounded to bf16.
// CHECK-LABEL: func.func @f
// CHECK-NOT:   "tg.add"
// CHECK:       %0 = "tg.constant"() {value = dense<{{\[\[}}1.1015625, 1.203125, 1.296875], [2.09375, 2.203125, 2.296875]]> : tensor<2x3xbf16>}
// CHECK-NEXT:  return %0
