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

// Every dense<> form prints back; hex data prints as its values.
// CHECK:      module {
// CHECK-NEXT: func.func @dense() {
// CHECK-NEXT: %0 = "tg.constant"() {value = dense<0.5> : tensor<2x3xf32>} : () -> tensor<2x3xf32>
// CHECK-NEXT: %1 = "tg.constant"() {value = dense<{{\[\[}}1, 2, 3], [4, 5, 6]]> : tensor<2x3xi32>} : () -> tensor<2x3xi32>
// CHECK-NEXT: %2 = "tg.constant"() {value = dense<[true, false, true]> : tensor<3xi1>} : () -> tensor<3xi1>
// CHECK-NEXT: %3 = "tg.constant"() {value = dense<-7> : tensor<i64>} : () -> tensor<i64>
// CHECK-NEXT: %4 = "tg.constant"() {value = dense<> : tensor<0xf32>} : () -> tensor<0xf32>
// CHECK-NEXT: %5 = "tg.constant"() {value = dense<[1.0, 2.0]> : tensor<2xf32>} : () -> tensor<2xf32>
// CHECK-NEXT: %6 = "tg.constant"() {value = dense<[0, 255]> : tensor<2xui8>} : () -> tensor<2xui8>
// CHECK-NEXT: return
// CHECK-NEXT: }
// CHECK-NEXT: }
