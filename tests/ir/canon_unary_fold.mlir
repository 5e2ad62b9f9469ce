// RUN: --pass-pipeline='builtin.module(canonicalize)'
func.func @f() -> (tensor<3xf32>, tensor<3xf32>, tensor<3xf32>) {
  %a = "tg.constant"() {value = dense<[0.0, 1.0, 4.0]> : tensor<3xf32>} : () -> tensor<3xf32>
  %e = "tg.exp"(%a) : (tensor<3xf32>) -> tensor<3xf32>
  %r = "tg.rsqrt"(%a) : (tensor<3xf32>) -> tensor<3xf32>
  %g = "tg.sigmoid"(%a) : (tensor<3xf32>) -> tensor<3xf32>
  return %e, %r, %g : tensor<3xf32>, tensor<3xf32>, tensor<3xf32>
}

// exp, rsqrt (of 0: +inf) and sigmoid of constants fold.
// CHECK:      %0 = "tg.constant"() {value = dense<[1.0, 2.7182817, 54.59815]> : tensor<3xf32>}
// CHECK-NEXT: %1 = "tg.constant"() {value = dense<[0x7F800000, 1.0, 0.5]> : tensor<3xf32>}
// CHECK-NEXT: %2 = "tg.constant"() {value = dense<[0.5, 0.7310586, 0.98201376]> : tensor<3xf32>}
// CHECK-NEXT: return %0, %1, %2 :
