// RUN: --pass-pipeline='builtin.module(cse)'
func.func @f(%x: tensor<4xf32>, %y: tensor<4xf32>) -> tensor<4xf32> {
  %a = "tg.mul"(%x, %y) : (tensor<4xf32>, tensor<4xf32>) -> tensor<4xf32>
  %b = "tg.mul"(%y, %x) : (tensor<4xf32>, tensor<4xf32>) -> tensor<4xf32>
  %c = "tg.sub"(%x, %y) : (tensor<4xf32>, tensor<4xf32>) -> tensor<4xf32>
  %d = "tg.sub"(%y, %x) : (tensor<4xf32>, tensor<4xf32>) -> tensor<4xf32>
  %e = "tg.add"(%a, %b) : (tensor<4xf32>, tensor<4xf32>) -> tensor<4xf32>
  %f = "tg.add"(%c, %d) : (tensor<4xf32>, tensor<4xf32>) -> tensor<4xf32>
  %g = "tg.add"(%e, %f) : (tensor<4xf32>, tensor<4xf32>) -> tensor<4xf32>
  return %g : tensor<4xf32>
}

// mul(y, x) is mul(x, y); sub(y, x) is not sub(x, y).
// CHECK-LABEL: func.func @f
// CHECK-COUNT-1: "tg.mul"(%arg0, %arg1)
// CHECK-NOT:   "tg.mul"
// CHECK:       "tg.sub"(%arg0, %arg1)
// CHECK-NEXT:  "tg.sub"(%arg1, %arg0)
// CHECK-NEXT:  "tg.add"(%0, %0)
