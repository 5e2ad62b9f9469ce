// RUN: --pass-pipeline='builtin.module(attach-target{sms=2},fuse,tile,schedule,select-kernels)'
// A q4_1 product on an activation rounded to 8 bits (`act_q8`) takes the integer dot-product
// path (`dp4a`), its rounded input row a temporary of the task's scratch: 64 values are two
// blocks, halves of 32 bytes 128 + 64 bytes apart, then two (d, s) pairs: 240 bytes. The
// row is read once, so an input straight from the (unaligned) inputs buffer takes it too.
// The default preload-blocks (4) takes each loop's first round before the wait: one piece.
func.func @f(%x: tensor<64xf32>, %w: tensor<128x64x!mkc.q4_1> {mkc.weight = "w"}) -> (tensor<128xf32>, tensor<128xf32>) {
  %h = "tg.add"(%x, %x) : (tensor<64xf32>, tensor<64xf32>) -> tensor<64xf32>
  %a = "tg.matmul"(%h, %w) {act_q8 = true, transpose_b = true} : (tensor<64xf32>, tensor<128x64x!mkc.q4_1>) -> tensor<128xf32>
  %b = "tg.matmul"(%x, %w) {act_q8 = true, transpose_b = true} : (tensor<64xf32>, tensor<128x64x!mkc.q4_1>) -> tensor<128xf32>
  return %a, %b : tensor<128xf32>, tensor<128xf32>
}

// CHECK-LABEL: "kernel.plan"
// CHECK:       "kernel.op"() {index = 0 : i64, matvec = "dp4a", name = "tg.matmul", preload = 1 : i64, result = #kernel.place<direct>, temps = [#kernel.place<shared, 0, 240>]}
// CHECK:       "kernel.op"() {index = 0 : i64, matvec = "dp4a", name = "tg.matmul", preload = 1 : i64, result = #kernel.place<direct>, temps = [#kernel.place<shared, 0, 240>]}
