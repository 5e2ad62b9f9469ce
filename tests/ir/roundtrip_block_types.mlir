// RUN: --pass-pipeline='builtin.module(canonicalize)'
// Every block format prints and parses back; a gather of a block table's rows is f32.
func.func @f(%t: tensor<i64>, %a: tensor<8x32x!mkc.q4_0> {mkc.weight = "a"}, %b: tensor<8x32x!mkc.q4_1> {mkc.weight = "b"}, %c: tensor<8x32x!mkc.q8_0> {mkc.weight = "c"}, %d: tensor<2x256x!mkc.q4_k> {mkc.weight = "d"}, %e: tensor<2x256x!mkc.q6_k> {mkc.weight = "e"}) -> (tensor<32xf32>, tensor<256xf32>) {
  %0 = "tg.gather"(%c, %t) {axis = 0 : i64} : (tensor<8x32x!mkc.q8_0>, tensor<i64>) -> tensor<32xf32>
  %1 = "tg.gather"(%e, %t) {axis = 0 : i64} : (tensor<2x256x!mkc.q6_k>, tensor<i64>) -> tensor<256xf32>
  return %0, %1 : tensor<32xf32>, tensor<256xf32>
}

// CHECK:      func.func @f(%arg0: tensor<i64>, %arg1: tensor<8x32x!mkc.q4_0> {mkc.weight = "a"}, %arg2: tensor<8x32x!mkc.q4_1> {mkc.weight = "b"}, %arg3: tensor<8x32x!mkc.q8_0> {mkc.weight = "c"}, %arg4: tensor<2x256x!mkc.q4_k> {mkc.weight = "d"}, %arg5: tensor<2x256x!mkc.q6_k> {mkc.weight = "e"})
// CHECK-NEXT: %0 = "tg.gather"(%arg3, %arg0) {axis = 0 : i64} : (tensor<8x32x!mkc.q8_0>, tensor<i64>) -> tensor<32xf32>
// CHECK-NEXT: %1 = "tg.gather"(%arg5, %arg0) {axis = 0 : i64} : (tensor<2x256x!mkc.q6_k>, tensor<i64>) -> tensor<256xf32>
