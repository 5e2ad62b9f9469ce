// RUN: --pass-pipeline='builtin.module(canonicalize)'
func.func @f() -> tensor<2x3xbf16> {
  %col = "tg.constant"() {value = dense<[[1.0], [2.0]]> : tensor<2x1xbf16>} : () -> tensor<2x1xbf16>
  %row = "tg.constant"() {value = dense<[0.1, 0.2, 0.3]> : tensor<3xbf16>} : () -> tensor<3xbf16>
  %s = "tg.add"(%col, %row) : (tensor<2x1xbf16>, tensor<3xbf16>) -> tensor<2x3xbf16>
  return %s : tensor<2x3xbf16>
}
