// RUN: --pass-pipeline='builtin.module(attach-target{sms=2},fuse,tile,schedule,select-kernels{preload-blocks=4})'
// preload-blocks=4 (the default) on block-quantized weights: a `blocks` or `dp4a` product loads the first pieces
// of its loop's first round before the task's wait, at most that round's unroll. K = 256:
// a q4_1 row is 8 pieces, 4 lanes of 2 a round on f32 inputs (preload 2); a q8_0 row is 16,
// 4 lanes of 4 (preload 4); on 8-bit inputs the q4_1 row takes 2 a round as well. A q4_k
// product reads an element at a time (`lanes`) and preloads nothing.
func.func @f(%x: tensor<256xf32>, %w: tensor<64x256x!mkc.q4_1> {mkc.weight = "w"}, %v: tensor<64x256x!mkc.q8_0> {mkc.weight = "v"}, %k: tensor<64x256x!mkc.q4_k> {mkc.weight = "k"}) -> (tensor<64xf32>, tensor<64xf32>, tensor<64xf32>, tensor<64xf32>) {
  %h = "tg.add"(%x, %x) : (tensor<256xf32>, tensor<256xf32>) -> tensor<256xf32>
  %a = "tg.matmul"(%h, %w) {transpose_b = true} : (tensor<256xf32>, tensor<64x256x!mkc.q4_1>) -> tensor<64xf32>
  %b = "tg.matmul"(%h, %v) {act_q8 = true, transpose_b = true} : (tensor<256xf32>, tensor<64x256x!mkc.q8_0>) -> tensor<64xf32>
  %c = "tg.matmul"(%h, %w) {act_q8 = true, transpose_b = true} : (tensor<256xf32>, tensor<64x256x!mkc.q4_1>) -> tensor<64xf32>
  %d = "tg.matmul"(%h, %k) {transpose_b = true} : (tensor<256xf32>, tensor<64x256x!mkc.q4_k>) -> tensor<64xf32>
  return %a, %b, %c, %d : tensor<64xf32>, tensor<64xf32>, tensor<64xf32>, tensor<64xf32>
}

// CHECK-LABEL: "kernel.plan"
// CHECK:       "kernel.op"() {index = 0 : i64, matvec = "lanes", name = "tg.matmul", result = #kernel.place<direct>}
// CHECK:       "kernel.op"() {index = 1 : i64, matvec = "dp4a", name = "tg.matmul", preload = 2 : i64, result = #kernel.place<direct>, temps = [#kernel.place<shared, 0, 384>]}
// CHECK:       "kernel.op"() {index = 2 : i64, matvec = "dp4a", name = "tg.matmul", preload = 4 : i64, result = #kernel.place<direct>, temps = [#kernel.place<shared, 0, 384>]}
// CHECK:       "kernel.op"() {index = 3 : i64, matvec = "blocks", name = "tg.matmul", preload = 2 : i64, result = #kernel.place<direct>}
