// RUN: --pass-pipeline='builtin.module(cse)' --allow-unregistered-dialect
func.func @f() -> (tensor<2xf32>, tensor<2xf32>) {
  %a = "demo.random"() : () -> tensor<2xf32>
  %b = "demo.random"() : () -> tensor<2xf32>
  return %a, %b : tensor<2xf32>, tensor<2xf32>
}

// Ops of an unknown dialect may have effects: identical ones stay two.
// CHECK:      %0 = "demo.random"()
// CHECK-NEXT: %1 = "demo.random"()
// CHECK-NEXT: return %0, %1 :
