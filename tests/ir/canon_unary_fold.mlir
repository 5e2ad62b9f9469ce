// RUN: --pass-pipeline='builtin.module(canonicalize)'
func.func @f() -> (tensor<3xf32>, tensor<3xf32>, tensor<3xf32>) {
  %a = "tg.constant"() {value = dense<[0.0, 1.0, 4.0]> : tensor<3xf32>} : () -> tensor<3xf32>
  %e = "tg.exp"(%a) : (tensor<3xf32>) -> tensor<3xf32>
  %r = "tg.rsqrt"(%a) : (tensor<3xf32>) -> tensor<3xf32>
  %g = "tg.sigmoid"(%a) : (tensor<3xf32>) -> tensor<3xf32>
  return %e, %r, %g : tensor<3xf32>, tensor<3xf32>, tensor<3xf32>
}
