// RUN:
func.func @lowp(%a: tensor<4xf8E4M3FN>, %b: tensor<4xf8E5M2>, %c: tensor<4xf8E4M3FNUZ>, %d: tensor<4xf8E5M2FNUZ>, %e: tensor<4xf8E8M0FNU>, %f: tensor<4xf4E2M1FN>, %g: tensor<4xi4>, %h: tensor<4xui4>, %i: tensor<4xi2>, %j: tensor<4xui2>) -> (tensor<3xf8E4M3FN>, tensor<2xf8E5M2>, tensor<4xf32>) {
  %k = "tg.constant"() {value = dense<[0.5, 448.0, 0x7F]> : tensor<3xf8E4M3FN>} : () -> tensor<3xf8E4M3FN>
  %l = "tg.constant"() {value = dense<[0x7C, -0.875]> : tensor<2xf8E5M2>} : () -> tensor<2xf8E5M2>
  %m = "tg.cast"(%a) : (tensor<4xf8E4M3FN>) -> tensor<4xf32>
  return %k, %l, %m : tensor<3xf8E4M3FN>, tensor<2xf8E5M2>, tensor<4xf32>
}
