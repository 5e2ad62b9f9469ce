// RUN:
func.func @f() {
  %0 = "tg.constant"() {value = dense<[1, 300]> : tensor<2xi8>} : () -> tensor<2xi8>
  return
}
