// RUN: --pass-pipeline='builtin.module(cse)' --allow-unregistered-dialect
func.func @f(%x: tensor<4xf32>) -> tensor<4xf32> {
  %outer = "tg.exp"(%x) : (tensor<4xf32>) -> tensor<4xf32>
  %r = "demo.region"() ({
    %inner = "tg.exp"(%x) : (tensor<4xf32>) -> tensor<4xf32>
    %only_inside = "tg.neg"(%x) : (tensor<4xf32>) -> tensor<4xf32>
    "demo.yield"(%inner, %only_inside) : (tensor<4xf32>, tensor<4xf32>) -> ()
  }) : () -> tensor<4xf32>
  %after = "tg.neg"(%x) : (tensor<4xf32>) -> tensor<4xf32>
  %s = "tg.add"(%outer, %after) : (tensor<4xf32>, tensor<4xf32>) -> tensor<4xf32>
  %t = "tg.add"(%s, %r) : (tensor<4xf32>, tensor<4xf32>) -> tensor<4xf32>
  return %t : tensor<4xf32>
}

// The inner exp is the outer one (which dominates it); the neg inside the region does not
// dominate the one after it, so both stay.
// CHECK-LABEL: func.func @f
// CHECK-NEXT:  %0 = "tg.exp"(%arg0)
// CHECK-NEXT:  %1 = "demo.region"() ({
// CHECK-NOT:   "tg.exp"
// CHECK-NEXT:    %2 = "tg.neg"(%arg0)
// CHECK-NEXT:    "demo.yield"(%0, %2)
// CHECK-NEXT:  })
// CHECK-NEXT:  %3 = "tg.neg"(%arg0)
// CHECK-NEXT:  %4 = "tg.add"(%0, %3)
