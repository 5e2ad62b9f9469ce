// RUN: --pass-pipeline='builtin.module(canonicalize)'
func.func @f() -> (tensor<2xi8>, tensor<2xi32>, tensor<2xi32>) {
  %a = "tg.constant"() {value = dense<[100, -128]> : tensor<2xi8>} : () -> tensor<2xi8>
  %s = "tg.add"(%a, %a) : (tensor<2xi8>, tensor<2xi8>) -> tensor<2xi8>
  %n = "tg.constant"() {value = dense<[7, -7]> : tensor<2xi32>} : () -> tensor<2xi32>
  %d = "tg.constant"() {value = dense<2> : tensor<2xi32>} : () -> tensor<2xi32>
  %q = "tg.div"(%n, %d) : (tensor<2xi32>, tensor<2xi32>) -> tensor<2xi32>
  %z = "tg.constant"() {value = dense<[1, 0]> : tensor<2xi32>} : () -> tensor<2xi32>
  %bad = "tg.div"(%n, %z) : (tensor<2xi32>, tensor<2xi32>) -> tensor<2xi32>
  return %s, %q, %bad : tensor<2xi8>, tensor<2xi32>, tensor<2xi32>
}

// i8 addition wraps (100 + 100 = -56, -128 + -128 = 0), i32 division truncates toward zero,
// and a division with a zero divisor is left to run.
// CHECK:      %0 = "tg.constant"() {value = dense<[-56, 0]> : tensor<2xi8>}
// CHECK-NEXT: %1 = "tg.constant"() {value = dense<[7, -7]> : tensor<2xi32>}
// CHECK-NEXT: %2 = "tg.constant"() {value = dense<[3, -3]> : tensor<2xi32>}
// CHECK-NEXT: %3 = "tg.constant"() {value = dense<[1, 0]> : tensor<2xi32>}
// CHECK-NEXT: %4 = "tg.div"(%1, %3)
// CHECK-NEXT: return %0, %2, %4 :
