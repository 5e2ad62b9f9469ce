// RUN: --pass-pipeline='builtin.module(dce)' --allow-unregistered-dialect
func.func @f(%x: tensor<4xf32>) {
  %a = "tg.exp"(%x) : (tensor<4xf32>) -> tensor<4xf32>
  "demo.store"(%a) : (tensor<4xf32>) -> ()
  %unused = "demo.effect"() : () -> tensor<4xf32>
  %dead = "tg.neg"(%x) : (tensor<4xf32>) -> tensor<4xf32>
  return
}

// The unused result of an op that may have effects keeps it; the dead neg goes.
// CHECK-LABEL: func.func @f
// CHECK-NEXT:  %0 = "tg.exp"(%arg0)
// CHECK-NEXT:  "demo.store"(%0)
// CHECK-NEXT:  %1 = "demo.effect"()
// CHECK-NEXT:  return
