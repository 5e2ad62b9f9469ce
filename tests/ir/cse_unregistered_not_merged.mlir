// RUN: --pass-pipeline='builtin.module(cse)' --allow-unregistered-dialect
func.func @f() -> (tensor<2xf32>, tensor<2xf32>) {
  %a = "demo.random"() : () -> tensor<2xf32>
  %b = "demo.random"() : () -> tensor<2xf32>
  return %a, %b : tensor<2xf32>, tensor<2xf32>
}
