// RUN: --pass-pipeline='builtin.module(dce)' --pass-statistics
func.func @f(%x: tensor<4xf32>) -> tensor<4xf32> {
  %a = "tg.exp"(%x) : (tensor<4xf32>) -> tensor<4xf32>
  %b = "tg.mul"(%a, %a) : (tensor<4xf32>, tensor<4xf32>) -> tensor<4xf32>
  %c = "tg.neg"(%b) : (tensor<4xf32>) -> tensor<4xf32>
  %used = "tg.sqrt"(%x) : (tensor<4xf32>) -> tensor<4xf32>
  return %used : tensor<4xf32>
}

// The chain exp, mul, neg is unused; only the sqrt stays.
// CHECK-LABEL: func.func @f
// CHECK-NOT:   "tg.{{exp|mul|neg}}"
// CHECK:       %0 = "tg.sqrt"(%arg0)
// CHECK-NEXT:  return %0
// CHECK:       'dce'
// CHECK-NEXT:  (erased) 3 :
