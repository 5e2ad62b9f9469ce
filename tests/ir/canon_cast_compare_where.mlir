// RUN: --pass-pipeline='builtin.module(canonicalize)'
func.func @f(%x: tensor<3xf32>) -> (tensor<3xf32>, tensor<3xi32>, tensor<3xf32>) {
  %same = "tg.cast"(%x) : (tensor<3xf32>) -> tensor<3xf32>
  %c = "tg.constant"() {value = dense<[-1.5, 0.5, 2.7]> : tensor<3xf32>} : () -> tensor<3xf32>
  %i = "tg.cast"(%c) : (tensor<3xf32>) -> tensor<3xi32>
  %zero = "tg.constant"() {value = dense<0.0> : tensor<f32>} : () -> tensor<f32>
  %pos = "tg.gt"(%c, %zero) : (tensor<3xf32>, tensor<f32>) -> tensor<3xi1>
  %w = "tg.where"(%pos, %c, %zero) : (tensor<3xi1>, tensor<3xf32>, tensor<f32>) -> tensor<3xf32>
  return %same, %i, %w : tensor<3xf32>, tensor<3xi32>, tensor<3xf32>
}

// A same-type cast is its operand; the cast, compare and select of constants fold (the cast
// to i32 truncates toward zero).
// CHECK-LABEL: func.func @f
// CHECK-NOT:   "tg.cast"
// CHECK:       %[[I:.*]] = "tg.constant"() {value = dense<[-1, 0, 2]> : tensor<3xi32>}
// CHECK-NEXT:  %[[W:.*]] = "tg.constant"() {value = dense<[0.0, 0.5, 2.7]> : tensor<3xf32>}
// CHECK-NEXT:  return %arg0, %[[I]], %[[W]] :
