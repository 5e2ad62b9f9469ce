// RUN: --pass-pipeline='builtin.module(int8-activations)'
// Products of one activation row by a q8_0, q4_0 or q4_1 weight read it rounded to 8 bits
// (`act_q8`); a q4_k weight, an f32 weight and a product of several rows keep exact inputs.
func.func @f(%x: tensor<1x64xf32>, %y: tensor<2x64xf32>, %a: tensor<8x64x!mkc.q4_0> {mkc.weight = "a"}, %b: tensor<8x64x!mkc.q8_0> {mkc.weight = "b"}, %c: tensor<8x256x!mkc.q4_k> {mkc.weight = "c"}, %d: tensor<8x64xf32> {mkc.weight = "d"}, %z: tensor<256xf32>) -> (tensor<1x8xf32>, tensor<1x8xf32>, tensor<8xf32>, tensor<1x8xf32>, tensor<2x8xf32>) {
  %0 = "tg.matmul"(%x, %a) {transpose_b = true} : (tensor<1x64xf32>, tensor<8x64x!mkc.q4_0>) -> tensor<1x8xf32>
  %1 = "tg.matmul"(%x, %b) {transpose_b = true} : (tensor<1x64xf32>, tensor<8x64x!mkc.q8_0>) -> tensor<1x8xf32>
  %2 = "tg.matmul"(%z, %c) {transpose_b = true} : (tensor<256xf32>, tensor<8x256x!mkc.q4_k>) -> tensor<8xf32>
  %3 = "tg.matmul"(%x, %d) {transpose_b = true} : (tensor<1x64xf32>, tensor<8x64xf32>) -> tensor<1x8xf32>
  %4 = "tg.matmul"(%y, %a) {transpose_b = true} : (tensor<2x64xf32>, tensor<8x64x!mkc.q4_0>) -> tensor<2x8xf32>
  return %0, %1, %2, %3, %4 : tensor<1x8xf32>, tensor<1x8xf32>, tensor<8xf32>, tensor<1x8xf32>, tensor<2x8xf32>
}

// CHECK:      "tg.matmul"(%arg0, %arg2) {act_q8 = true, transpose_b = true}
// CHECK-NEXT: "tg.matmul"(%arg0, %arg3) {act_q8 = true, transpose_b = true}
// CHECK-NEXT: "tg.matmul"(%arg6, %arg4) {transpose_b = true}
// CHECK-NEXT: "tg.matmul"(%arg0, %arg5) {transpose_b = true}
// CHECK-NEXT: "tg.matmul"(%arg1, %arg2) {transpose_b = true}
