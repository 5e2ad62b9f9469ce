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
