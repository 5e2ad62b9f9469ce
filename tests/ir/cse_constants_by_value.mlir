// RUN: --pass-pipeline='builtin.module(cse)'
func.func @f() -> (tensor<2xf32>, tensor<2xf32>, tensor<2xf32>, tensor<2xbf16>) {
  %a = "tg.constant"() {value = dense<1.0> : tensor<2xf32>} : () -> tensor<2xf32>
  %b = "tg.constant"() {value = dense<1.0> : tensor<2xf32>} : () -> tensor<2xf32>
  %c = "tg.constant"() {value = dense<2.0> : tensor<2xf32>} : () -> tensor<2xf32>
  %d = "tg.constant"() {value = dense<1.0> : tensor<2xbf16>} : () -> tensor<2xbf16>
  return %a, %b, %c, %d : tensor<2xf32>, tensor<2xf32>, tensor<2xf32>, tensor<2xbf16>
}
