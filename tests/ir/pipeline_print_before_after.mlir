// RUN: --pass-pipeline='canonicalize,cse' --print-ir-before=cse --print-ir-after=canonicalize
func.func @f(%x: tensor<2xf32>) -> tensor<2xf32> {
  %z = "tg.constant"() {value = dense<0.0> : tensor<2xf32>} : () -> tensor<2xf32>
  %a = "tg.add"(%x, %z) : (tensor<2xf32>, tensor<2xf32>) -> tensor<2xf32>
  return %a : tensor<2xf32>
}

// A pipeline without an anchor runs on the module: the dumps are of the module, after
// canonicalize and before cse only, in the order they happen.
// CHECK:       return %arg0
// CHECK:       // ---- log ----
// CHECK-NEXT:  // -----// IR Dump After canonicalize (builtin.module) //----- //
// CHECK-NEXT:  module {
// CHECK-NEXT:    func.func @f(
// CHECK-NEXT:      return %arg0
// CHECK:       // -----// IR Dump Before cse (builtin.module) //----- //
// CHECK-NEXT:  module {
// CHECK-NOT:   IR Dump
