// RUN: --pass-pipeline='builtin.module(attach-target{sms=2},fuse,tile,schedule,select-kernels)'
// Block-quantized weights: a q4_1 product with transpose_b, its input in the arena, takes a
// warp per row with 16-byte loads of quantized values (`blocks`); a q4_k one (256-value
// super-blocks) reads an element at a time (`lanes`), as does one whose input is not 16-byte
// aligned (the inputs buffer); a gather from a q8_0 table gives f32 rows. The `blocks`
// product takes its first round (2 pieces) before the wait by default (preload-blocks 4).
func.func @f(%x: tensor<256xf32>, %t: tensor<i64>, %e: tensor<100x256x!mkc.q8_0> {mkc.weight = "e"}, %w: tensor<64x256x!mkc.q4_1> {mkc.weight = "w"}, %k: tensor<64x256x!mkc.q4_k> {mkc.weight = "k"}) -> (tensor<64xf32>, tensor<64xf32>, tensor<64xf32>, tensor<256xf32>) {
  %h = "tg.add"(%x, %x) : (tensor<256xf32>, tensor<256xf32>) -> tensor<256xf32>
  %a = "tg.matmul"(%h, %w) {transpose_b = true} : (tensor<256xf32>, tensor<64x256x!mkc.q4_1>) -> tensor<64xf32>
  %b = "tg.matmul"(%h, %k) {transpose_b = true} : (tensor<256xf32>, tensor<64x256x!mkc.q4_k>) -> tensor<64xf32>
  %c = "tg.matmul"(%x, %w) {transpose_b = true} : (tensor<256xf32>, tensor<64x256x!mkc.q4_1>) -> tensor<64xf32>
  %r = "tg.gather"(%e, %t) {axis = 0 : i64} : (tensor<100x256x!mkc.q8_0>, tensor<i64>) -> tensor<256xf32>
  return %a, %b, %c, %r : tensor<64xf32>, tensor<64xf32>, tensor<64xf32>, tensor<256xf32>
}

// CHECK-LABEL: "kernel.plan"
// CHECK:       "kernel.op"() {index = 0 : i64, name = "tg.gather", result = #kernel.place<direct>}
// CHECK:       "kernel.op"() {index = 0 : i64, matvec = "lanes", name = "tg.matmul", result = #kernel.place<direct>}
// CHECK-NEXT:  }) {direct = true, id = 1 : i64, kind = "lm_head"
// CHECK:       "kernel.op"() {index = 0 : i64, matvec = "lanes", name = "tg.matmul", result = #kernel.place<direct>}
// CHECK-NEXT:  }) {direct = true, id = 3 : i64, kind = "lm_head"
// CHECK-NEXT:  "kernel.code"
// CHECK-NEXT:  "kernel.op"() {index = 1 : i64, matvec = "blocks", name = "tg.matmul", preload = 2 : i64, result = #kernel.place<direct>}
// With a `blocks` product, thread-number=auto keeps the thread's number read once a pass
// (read by each code, those kernels spilled: docs/PERF.md, session 24).
// CHECK:       thread_number = "mov"
