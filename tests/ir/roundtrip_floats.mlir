// RUN:
func.func @floats() {
  %a = "tg.constant"() {value = dense<[0.1, 1.0e-5, 3.4028235e38, -0.0, 0x7FC00000, 0x7F800000, 0xFF800000]> : tensor<7xf32>} : () -> tensor<7xf32>
  %b = "tg.constant"() {value = dense<[0.1, 3.14159, 65504.0]> : tensor<3xbf16>} : () -> tensor<3xbf16>
  %c = "tg.constant"() {value = dense<[0.1, 6.1e-5]> : tensor<2xf16>} : () -> tensor<2xf16>
  %d = "tg.constant"() {value = dense<[0.1, 1.0e100, 4.9e-324]> : tensor<3xf64>} : () -> tensor<3xf64>
  return
}
