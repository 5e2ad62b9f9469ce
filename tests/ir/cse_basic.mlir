// RUN: --pass-pipeline='builtin.module(func.func(cse))' --pass-statistics
func.func @f(%x: tensor<4xf32>, %y: tensor<4xf32>) -> tensor<4xf32> {
  %a = "tg.add"(%x, %y) : (tensor<4xf32>, tensor<4xf32>) -> tensor<4xf32>
  %b = "tg.add"(%x, %y) : (tensor<4xf32>, tensor<4xf32>) -> tensor<4xf32>
  %c = "tg.exp"(%a) : (tensor<4xf32>) -> tensor<4xf32>
  %d = "tg.exp"(%b) : (tensor<4xf32>) -> tensor<4xf32>
  %e = "tg.mul"(%c, %d) : (tensor<4xf32>, tensor<4xf32>) -> tensor<4xf32>
  return %e : tensor<4xf32>
}

// The second add and, once its operand is the first add, the second exp are the first.
// CHECK-LABEL: func.func @f
// CHECK-NEXT:  %[[A:.*]] = "tg.add"(%arg0, %arg1)
// CHECK-NEXT:  %[[E:.*]] = "tg.exp"(%[[A]])
// CHECK-NEXT:  "tg.mul"(%[[E]], %[[E]])
// CHECK:       'cse'
// CHECK-NEXT:  (eliminated) 2 :
