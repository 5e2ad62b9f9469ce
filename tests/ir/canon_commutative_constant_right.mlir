// RUN: --pass-pipeline='builtin.module(canonicalize)'
func.func @f(%x: tensor<4xf32>) -> tensor<4xf32> {
  %c = "tg.constant"() {value = dense<2.0> : tensor<4xf32>} : () -> tensor<4xf32>
  %a = "tg.mul"(%c, %x) : (tensor<4xf32>, tensor<4xf32>) -> tensor<4xf32>
  %b = "tg.sub"(%c, %a) : (tensor<4xf32>, tensor<4xf32>) -> tensor<4xf32>
  return %b : tensor<4xf32>
}

// The constant of the commutative mul moves to the right; sub is not commutative.
// CHECK:      %[[C:.*]] = "tg.constant"() {value = dense<2.0> : tensor<4xf32>}
// CHECK-NEXT: %[[M:.*]] = "tg.mul"(%arg0, %[[C]])
// CHECK-NEXT: "tg.sub"(%[[C]], %[[M]])
