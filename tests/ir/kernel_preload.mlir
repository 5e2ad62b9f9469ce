// RUN: --pass-pipeline='builtin.module(attach-target{sms=2},fuse,tile,schedule,select-kernels{preload=4})'
// preload=4: the `row` product (K = 1024: 4 blocks of 256, unrolled by 4) loads its first
// 4 blocks before the task's wait; `lanes` products do not preload.
func.func @f(%x: tensor<1024xf32>, %g: tensor<1024xbf16> {mkc.weight = "g"}, %wt: tensor<64x1024xbf16> {mkc.weight = "wt"}, %wn: tensor<1024x64xbf16> {mkc.weight = "wn"}) -> (tensor<64xf32>, tensor<64xf32>) {
  %h = "tg.rms_norm"(%x, %g) {axis = 0 : i64, epsilon = 1.0e-6 : f64} : (tensor<1024xf32>, tensor<1024xbf16>) -> tensor<1024xf32>
  %a = "tg.matmul"(%h, %wt) {transpose_b = true} : (tensor<1024xf32>, tensor<64x1024xbf16>) -> tensor<64xf32>
  %b = "tg.matmul"(%h, %wn) : (tensor<1024xf32>, tensor<1024x64xbf16>) -> tensor<64xf32>
  return %a, %b : tensor<64xf32>, tensor<64xf32>
}

// CHECK-LABEL: "kernel.plan"
// CHECK:       {index = 1 : i64, matvec = "lanes", name = "tg.matmul", result = #kernel.place<direct>}
// CHECK:       {index = 0 : i64, matvec = "row", name = "tg.matmul", preload = 4 : i64, result = #kernel.place<direct>, unroll = 4 : i64}
