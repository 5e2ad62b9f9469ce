// RUN: --pass-pipeline='builtin.module(canonicalize)'
func.func @f(%x: tensor<3xf32>) -> tensor<2x3xf32> {
  %zero = "tg.constant"() {value = dense<0.0> : tensor<2x3xf32>} : () -> tensor<2x3xf32>
  %a = "tg.add"(%x, %zero) : (tensor<3xf32>, tensor<2x3xf32>) -> tensor<2x3xf32>
  return %a : tensor<2x3xf32>
}

// x + 0 is not x where the zero broadcasts x to a bigger shape.
// CHECK:      %0 = "tg.constant"() {value = dense<0.0> : tensor<2x3xf32>}
// CHECK-NEXT: %1 = "tg.add"(%arg0, %0) : (tensor<3xf32>, tensor<2x3xf32>) -> tensor<2x3xf32>
// CHECK-NEXT: return %1
