// RUN: --pass-pipeline='builtin.module(func.func(canonicalize,cse),dce)' --print-ir-after-change
func.func @f(%x: tensor<2xf32>) -> tensor<2xf32> {
  %one = "tg.constant"() {value = dense<1.0> : tensor<2xf32>} : () -> tensor<2xf32>
  %a = "tg.mul"(%x, %one) : (tensor<2xf32>, tensor<2xf32>) -> tensor<2xf32>
  return %a : tensor<2xf32>
}
func.func @g(%x: tensor<2xf32>) -> tensor<2xf32> {
  %a = "tg.exp"(%x) : (tensor<2xf32>) -> tensor<2xf32>
  %b = "tg.exp"(%x) : (tensor<2xf32>) -> tensor<2xf32>
  %c = "tg.add"(%a, %b) : (tensor<2xf32>, tensor<2xf32>) -> tensor<2xf32>
  return %c : tensor<2xf32>
}

// Each function pass runs on each function; only the runs that changed one are printed:
// canonicalize on @f (x * 1) and cse on @g (the two exps), each dump the function alone.
// CHECK-LABEL: func.func @f(
// CHECK-NEXT:    return %arg0
// CHECK-LABEL: func.func @g(
// CHECK-NEXT:    %0 = "tg.exp"(%arg0)
// CHECK-NEXT:    %1 = "tg.add"(%0, %0)
// CHECK-LABEL: // ---- log ----
// CHECK-NOT:   IR Dump After cse (func.func)
// CHECK:       // -----// IR Dump After canonicalize (func.func) //----- //
// CHECK-NEXT:  func.func @f(
// CHECK-NEXT:    return %arg0
// CHECK-NOT:   IR Dump
// CHECK:       // -----// IR Dump After cse (func.func) //----- //
// CHECK-NEXT:  func.func @g(
// CHECK-NOT:   IR Dump
