// RUN:
func.func @lowp(%a: tensor<4xf8E4M3FN>, %b: tensor<4xf8E5M2>, %c: tensor<4xf8E4M3FNUZ>, %d: tensor<4xf8E5M2FNUZ>, %e: tensor<4xf8E8M0FNU>, %f: tensor<4xf4E2M1FN>, %g: tensor<4xi4>, %h: tensor<4xui4>, %i: tensor<4xi2>, %j: tensor<4xui2>) -> (tensor<3xf8E4M3FN>, tensor<2xf8E5M2>, tensor<4xf32>) {
  %k = "tg.constant"() {value = dense<[0.5, 448.0, 0x7F]> : tensor<3xf8E4M3FN>} : () -> tensor<3xf8E4M3FN>
  %l = "tg.constant"() {value = dense<[0x7C, -0.875]> : tensor<2xf8E5M2>} : () -> tensor<2xf8E5M2>
  %m = "tg.cast"(%a) : (tensor<4xf8E4M3FN>) -> tensor<4xf32>
  return %k, %l, %m : tensor<3xf8E4M3FN>, tensor<2xf8E5M2>, tensor<4xf32>
}

// The 8-, 4- and 2-bit types print back; 0x7F and 0x7C are bit patterns.
// CHECK:      module {
// CHECK-NEXT: func.func @lowp(%arg0: tensor<4xf8E4M3FN>, %arg1: tensor<4xf8E5M2>, %arg2: tensor<4xf8E4M3FNUZ>, %arg3: tensor<4xf8E5M2FNUZ>, %arg4: tensor<4xf8E8M0FNU>, %arg5: tensor<4xf4E2M1FN>, %arg6: tensor<4xi4>, %arg7: tensor<4xui4>, %arg8: tensor<4xi2>, %arg9: tensor<4xui2>) -> (tensor<3xf8E4M3FN>, tensor<2xf8E5M2>, tensor<4xf32>) {
// CHECK-NEXT: %0 = "tg.constant"() {value = dense<[0.5, 448.0, 0x7F]> : tensor<3xf8E4M3FN>} : () -> tensor<3xf8E4M3FN>
// CHECK-NEXT: %1 = "tg.constant"() {value = dense<[0x7C, -0.875]> : tensor<2xf8E5M2>} : () -> tensor<2xf8E5M2>
// CHECK-NEXT: %2 = "tg.cast"(%arg0) : (tensor<4xf8E4M3FN>) -> tensor<4xf32>
// CHECK-NEXT: return %0, %1, %2 : tensor<3xf8E4M3FN>, tensor<2xf8E5M2>, tensor<4xf32>
// CHECK-NEXT: }
// CHECK-NEXT: }
