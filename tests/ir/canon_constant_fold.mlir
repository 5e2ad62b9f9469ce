// RUN: --pass-pipeline='builtin.module(canonicalize)'
func.func @f() -> tensor<3xf32> {
  %a = "tg.constant"() {value = dense<[1.0, 2.0, 3.0]> : tensor<3xf32>} : () -> tensor<3xf32>
  %b = "tg.constant"() {value = dense<0.5> : tensor<3xf32>} : () -> tensor<3xf32>
  %s = "tg.add"(%a, %b) : (tensor<3xf32>, tensor<3xf32>) -> tensor<3xf32>
  %m = "tg.mul"(%s, %s) : (tensor<3xf32>, tensor<3xf32>) -> tensor<3xf32>
  %n = "tg.neg"(%m) : (tensor<3xf32>) -> tensor<3xf32>
  return %n : tensor<3xf32>
}

// -((a + b) * (a + b)) folds to one constant.
// CHECK-LABEL: func.func @f
// CHECK-NOT:   "tg.{{add|mul|neg}}"
// CHECK:       %0 = "tg.constant"() {value = dense<[-2.25, -6.25, -12.25]> : tensor<3xf32>}
// CHECK-NEXT:  return %0
