// RUN:
func.func @f() {
  %0 = "tg.constant"() {value = dense<[[1.0, 2.0], [3.0]]> : tensor<2x2xf32>} : () -> tensor<2x2xf32>
  return
}
