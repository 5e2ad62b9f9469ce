// RUN: --pass-pipeline='builtin.module(cse)'
func.func @f() -> (tensor<2xf32>, tensor<2xf32>, tensor<2xf32>, tensor<2xbf16>) {
  %a = "tg.constant"() {value = dense<1.0> : tensor<2xf32>} : () -> tensor<2xf32>
  %b = "tg.constant"() {value = dense<1.0> : tensor<2xf32>} : () -> tensor<2xf32>
  %c = "tg.constant"() {value = dense<2.0> : tensor<2xf32>} : () -> tensor<2xf32>
  %d = "tg.constant"() {value = dense<1.0> : tensor<2xbf16>} : () -> tensor<2xbf16>
  return %a, %b, %c, %d : tensor<2xf32>, tensor<2xf32>, tensor<2xf32>, tensor<2xbf16>
}

// Equal constants merge; another value or element type does not.
// CHECK-LABEL: func.func @f
// CHECK-NEXT:  %0 = "tg.constant"() {value = dense<1.0> : tensor<2xf32>}
// CHECK-NEXT:  %1 = "tg.constant"() {value = dense<2.0> : tensor<2xf32>}
// CHECK-NEXT:  %2 = "tg.constant"() {value = dense<1.0> : tensor<2xbf16>}
// CHECK-NEXT:  return %0, %0, %1, %2 :
