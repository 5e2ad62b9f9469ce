// RUN: --pass-pipeline='builtin.module(attach-target{sms=4},split-k,fuse,tile{min-tile-bytes=1024},schedule,select-kernels{threads=32 preload-split-k=4})'
// A split-K part over more chunks of 8 rows than the CTA has threads (N = 512: 64 chunks,
// 32 threads) is not read 8 rows at a time (that layout gives each thread one chunk and
// would leave rows 256..511 unsummed): no preload is planned (with 64 threads there is
// one), and the code adds a row at a time (`atomicrmw fadd`, no 16-byte reductions).
func.func @f(%r: tensor<512xf32>, %g: tensor<512xbf16> {mkc.weight = "g"}, %wg: tensor<64x512xbf16> {mkc.weight = "wg"}, %wu: tensor<64x512xbf16> {mkc.weight = "wu"}, %wd: tensor<512x64xbf16> {mkc.weight = "wd"}, %wo: tensor<512x512xbf16> {mkc.weight = "wo"}) -> tensor<512xf32> {
  %o = "tg.matmul"(%r, %wo) {transpose_b = true} : (tensor<512xf32>, tensor<512x512xbf16>) -> tensor<512xf32>
  %r1 = "tg.add"(%r, %o) : (tensor<512xf32>, tensor<512xf32>) -> tensor<512xf32>
  %n = "tg.rms_norm"(%r1, %g) {axis = 0 : i64, epsilon = 1.0e-6 : f64} : (tensor<512xf32>, tensor<512xbf16>) -> tensor<512xf32>
  %a = "tg.matmul"(%n, %wg) {transpose_b = true} : (tensor<512xf32>, tensor<64x512xbf16>) -> tensor<64xf32>
  %s = "tg.silu"(%a) : (tensor<64xf32>) -> tensor<64xf32>
  %b = "tg.matmul"(%n, %wu) {transpose_b = true} : (tensor<512xf32>, tensor<64x512xbf16>) -> tensor<64xf32>
  %h = "tg.mul"(%b, %s) : (tensor<64xf32>, tensor<64xf32>) -> tensor<64xf32>
  %d = "tg.matmul"(%h, %wd) {transpose_b = true} : (tensor<64xf32>, tensor<512x64xbf16>) -> tensor<512xf32>
  %y = "tg.add"(%r1, %d) : (tensor<512xf32>, tensor<512xf32>) -> tensor<512xf32>
  return %y : tensor<512xf32>
}

// CHECK-LABEL: "kernel.plan"
// CHECK:       "kernel.op"() {index = {{[0-9]+}} : i64, name = "tg.matmul_acc", result = #kernel.place<direct>}
// CHECK-NOT:   split_k_preload
