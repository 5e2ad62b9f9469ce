// RUN:
func.func @dense() {
  %splat = "tg.constant"() {value = dense<0.5> : tensor<2x3xf32>} : () -> tensor<2x3xf32>
  %nested = "tg.constant"() {value = dense<[[1, 2, 3], [4, 5, 6]]> : tensor<2x3xi32>} : () -> tensor<2x3xi32>
  %bools = "tg.constant"() {value = dense<[true, false, true]> : tensor<3xi1>} : () -> tensor<3xi1>
  %scalar = "tg.constant"() {value = dense<-7> : tensor<i64>} : () -> tensor<i64>
  %empty = "tg.constant"() {value = dense<> : tensor<0xf32>} : () -> tensor<0xf32>
  %hex = "tg.constant"() {value = dense<"0x0000803F00000040"> : tensor<2xf32>} : () -> tensor<2xf32>
  %u = "tg.constant"() {value = dense<[0, 255]> : tensor<2xui8>} : () -> tensor<2xui8>
  return
}
