// RUN:
module {
  %c = "tg.constant"() {value = dense<1.0> : tensor<2xf32>} : () -> tensor<2xf32>
  func.func @f() -> tensor<2xf32> {
    return %c : tensor<2xf32>
  }
}
