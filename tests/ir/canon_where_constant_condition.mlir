// RUN: --pass-pipeline='builtin.module(canonicalize)'
func.func @f(%a: tensor<2x3xf32>, %b: tensor<2x3xf32>) -> (tensor<2x3xf32>, tensor<2x3xf32>, tensor<2x3xf32>) {
  %no = "tg.constant"() {value = dense<false> : tensor<2x1xi1>} : () -> tensor<2x1xi1>
  %yes = "tg.constant"() {value = dense<true> : tensor<i1>} : () -> tensor<i1>
  %mixed = "tg.constant"() {value = dense<[[true], [false]]> : tensor<2x1xi1>} : () -> tensor<2x1xi1>
  %0 = "tg.where"(%no, %a, %b) : (tensor<2x1xi1>, tensor<2x3xf32>, tensor<2x3xf32>) -> tensor<2x3xf32>
  %1 = "tg.where"(%yes, %a, %b) : (tensor<i1>, tensor<2x3xf32>, tensor<2x3xf32>) -> tensor<2x3xf32>
  %2 = "tg.where"(%mixed, %a, %b) : (tensor<2x1xi1>, tensor<2x3xf32>, tensor<2x3xf32>) -> tensor<2x3xf32>
  return %0, %1, %2 : tensor<2x3xf32>, tensor<2x3xf32>, tensor<2x3xf32>
}

// An all-false condition selects b, an all-true one a; a mixed one stays.
// CHECK-LABEL: func.func @f
// CHECK-NEXT:  %0 = "tg.constant"() {value = dense<{{\[\[}}true], [false]]> : tensor<2x1xi1>}
// CHECK-NEXT:  %1 = "tg.where"(%0, %arg0, %arg1)
// CHECK-NEXT:  return %arg1, %arg0, %1 :
