// RUN: --pass-pipeline='builtin.module(canonicalize{max-iterations=4},cse,dce)' --pass-statistics
func.func @f(%x: tensor<3xf32>) -> tensor<3xf32> {
  %two = "tg.constant"() {value = dense<2.0> : tensor<3xf32>} : () -> tensor<3xf32>
  %three = "tg.constant"() {value = dense<3.0> : tensor<3xf32>} : () -> tensor<3xf32>
  %five = "tg.add"(%two, %three) : (tensor<3xf32>, tensor<3xf32>) -> tensor<3xf32>
  %five_again = "tg.add"(%three, %two) : (tensor<3xf32>, tensor<3xf32>) -> tensor<3xf32>
  %a = "tg.mul"(%five, %x) : (tensor<3xf32>, tensor<3xf32>) -> tensor<3xf32>
  %b = "tg.mul"(%x, %five_again) : (tensor<3xf32>, tensor<3xf32>) -> tensor<3xf32>
  %c = "tg.add"(%a, %b) : (tensor<3xf32>, tensor<3xf32>) -> tensor<3xf32>
  return %c : tensor<3xf32>
}

// canonicalize folds both sums to 5 and moves the constant of the first mul right; cse
// then finds the two muls (and the two fives) identical; nothing is left for dce.
// CHECK-LABEL: func.func @f
// CHECK-NEXT:  %0 = "tg.constant"() {value = dense<5.0> : tensor<3xf32>}
// CHECK-NEXT:  %1 = "tg.mul"(%arg0, %0)
// CHECK-NEXT:  %2 = "tg.add"(%1, %1)
// CHECK-NEXT:  return %2
// CHECK:       'canonicalize'
// CHECK-NEXT:  (folded) 2 :
// CHECK-NEXT:  (simplified) 0 :
// CHECK-NEXT:  (reordered) 1 :
// CHECK-NEXT:  (erased) 2 :
// CHECK-NEXT:  'cse'
// CHECK-NEXT:  (eliminated) 2 :
// CHECK-NEXT:  'dce'
// CHECK-NEXT:  (erased) 0 :
