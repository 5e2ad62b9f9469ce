// RUN:
func.func @floats() {
  %a = "tg.constant"() {value = dense<[0.1, 1.0e-5, 3.4028235e38, -0.0, 0x7FC00000, 0x7F800000, 0xFF800000]> : tensor<7xf32>} : () -> tensor<7xf32>
  %b = "tg.constant"() {value = dense<[0.1, 3.14159, 65504.0]> : tensor<3xbf16>} : () -> tensor<3xbf16>
  %c = "tg.constant"() {value = dense<[0.1, 6.1e-5]> : tensor<2xf16>} : () -> tensor<2xf16>
  %d = "tg.constant"() {value = dense<[0.1, 1.0e100, 4.9e-324]> : tensor<3xf64>} : () -> tensor<3xf64>
  return
}

// Floats print as the shortest text that reads back to the same value of the type:
// bf16 and f16 round (65504 is 65536 in bf16), the f64 denormal prints as 5.0e-324.
// CHECK:      module {
// CHECK-NEXT: func.func @floats() {
// CHECK-NEXT: %0 = "tg.constant"() {value = dense<[0.1, 1.0e-5, 3.4028235e38, -0.0, 0x7FC00000, 0x7F800000, 0xFF800000]> : tensor<7xf32>} : () -> tensor<7xf32>
// CHECK-NEXT: %1 = "tg.constant"() {value = dense<[0.100097656, 3.140625, 65536.0]> : tensor<3xbf16>} : () -> tensor<3xbf16>
// CHECK-NEXT: %2 = "tg.constant"() {value = dense<[0.099975586, 6.097555e-5]> : tensor<2xf16>} : () -> tensor<2xf16>
// CHECK-NEXT: %3 = "tg.constant"() {value = dense<[0.1, 1.0e100, 5.0e-324]> : tensor<3xf64>} : () -> tensor<3xf64>
// CHECK-NEXT: return
// CHECK-NEXT: }
// CHECK-NEXT: }
