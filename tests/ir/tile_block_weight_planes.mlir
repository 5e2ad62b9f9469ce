// RUN: --pass-pipeline='builtin.module(attach-target{sms=4},fuse,tile)'
// A q8_0 weight [1024, 256] lives in two planes: its rows' block payloads (8 blocks of 32
// bytes a row, 262144 bytes), then their scales (8 f16 a row, 16384 bytes). A task of rows
// [r0, r1) reads both: payload bytes [256 r0, 256 r1) and scale bytes 262144 + [16 r0, 16 r1).
func.func @f(%x: tensor<256xf32>, %w: tensor<1024x256x!mkc.q8_0> {mkc.weight = "w"}) -> tensor<1024xf32> {
  %h = "tg.add"(%x, %x) : (tensor<256xf32>, tensor<256xf32>) -> tensor<256xf32>
  %a = "tg.matmul"(%h, %w) {transpose_b = true} : (tensor<256xf32>, tensor<1024x256x!mkc.q8_0>) -> tensor<1024xf32>
  return %a : tensor<1024xf32>
}

// CHECK:      "task.buffer"() {bytes = 278528 : i64, sym_name = "weights"}
// CHECK:      kind = "lm_head", output = 0 : i64, reads = [#task.range<weights, 0, 65536>, #task.range<weights, 262144, 266240>, #task.range<arena, 0, 1024>], signals = [], tile = [#task.box<0:256>]
// CHECK-NEXT: kind = "lm_head", output = 0 : i64, reads = [#task.range<weights, 65536, 131072>, #task.range<weights, 266240, 270336>, #task.range<arena, 0, 1024>], signals = [], tile = [#task.box<256:512>]
// CHECK-NEXT: kind = "lm_head", output = 0 : i64, reads = [#task.range<weights, 131072, 196608>, #task.range<weights, 270336, 274432>, #task.range<arena, 0, 1024>], signals = [], tile = [#task.box<512:768>]
// CHECK-NEXT: kind = "lm_head", output = 0 : i64, reads = [#task.range<weights, 196608, 262144>, #task.range<weights, 274432, 278528>, #task.range<arena, 0, 1024>], signals = [], tile = [#task.box<768:1024>]
