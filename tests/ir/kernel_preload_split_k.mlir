// RUN: --pass-pipeline='builtin.module(attach-target{sms=4},split-k,fuse,tile{min-tile-bytes=1024},schedule,select-kernels{preload-split-k=4})'
// preload-split-k=4: a split-K part of bf16 weights stored [K, N] copies the first 4 16-byte
// loads of each thread's K range into shared memory before the task's wait, beside the gate
// and up products' preloads (1 block each: K = 64), which keep their plans. Its temporary
// holds each thread group's sums (N = 64 is 8 chunks of 8 rows: 512 threads make 64 groups,
// 64 x 64 f32), summed over the groups after a barrier.
func.func @f(%r: tensor<64xf32>, %g: tensor<64xbf16> {mkc.weight = "g"}, %wg: tensor<256x64xbf16> {mkc.weight = "wg"}, %wu: tensor<256x64xbf16> {mkc.weight = "wu"}, %wd: tensor<64x256xbf16> {mkc.weight = "wd"}, %wo: tensor<64x64xbf16> {mkc.weight = "wo"}) -> tensor<64xf32> {
  %o = "tg.matmul"(%r, %wo) {transpose_b = true} : (tensor<64xf32>, tensor<64x64xbf16>) -> tensor<64xf32>
  %r1 = "tg.add"(%r, %o) : (tensor<64xf32>, tensor<64xf32>) -> tensor<64xf32>
  %n = "tg.rms_norm"(%r1, %g) {axis = 0 : i64, epsilon = 1.0e-6 : f64} : (tensor<64xf32>, tensor<64xbf16>) -> tensor<64xf32>
  %a = "tg.matmul"(%n, %wg) {transpose_b = true} : (tensor<64xf32>, tensor<256x64xbf16>) -> tensor<256xf32>
  %s = "tg.silu"(%a) : (tensor<256xf32>) -> tensor<256xf32>
  %b = "tg.matmul"(%n, %wu) {transpose_b = true} : (tensor<64xf32>, tensor<256x64xbf16>) -> tensor<256xf32>
  %h = "tg.mul"(%b, %s) : (tensor<256xf32>, tensor<256xf32>) -> tensor<256xf32>
  %d = "tg.matmul"(%h, %wd) {transpose_b = true} : (tensor<256xf32>, tensor<64x256xbf16>) -> tensor<64xf32>
  %y = "tg.add"(%r1, %d) : (tensor<64xf32>, tensor<64xf32>) -> tensor<64xf32>
  return %y : tensor<64xf32>
}


// CHECK-LABEL: "kernel.plan"
// CHECK:       "kernel.op"() {index = 1 : i64, matvec = "row", name = "tg.matmul", preload = 1 : i64, {{.*}} with = 2 : i64}
// CHECK-NEXT:  "kernel.op"() {index = 2 : i64, matvec = "row", name = "tg.matmul", preload = 1 : i64, {{.*}} with = 1 : i64}
// CHECK:       "kernel.op"() {index = 5 : i64, name = "tg.matmul_acc", result = #kernel.place<direct>, split_k_preload = 4 : i64, temps = [#kernel.place<shared, {{[0-9]+}}, 16384>]}
