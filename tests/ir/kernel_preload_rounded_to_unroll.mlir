// RUN: --pass-pipeline='builtin.module(attach-target{sms=2},fuse,tile,schedule,select-kernels{preload=2})'
// preload=2 where the loop takes 4 blocks a round (K = 1024, matvec-unroll 4): the preload
// is rounded down to whole rounds, so there is none.
func.func @f(%x: tensor<1024xf32>, %g: tensor<1024xbf16> {mkc.weight = "g"}, %wt: tensor<64x1024xbf16> {mkc.weight = "wt"}, %wn: tensor<1024x64xbf16> {mkc.weight = "wn"}) -> (tensor<64xf32>, tensor<64xf32>) {
  %h = "tg.rms_norm"(%x, %g) {axis = 0 : i64, epsilon = 1.0e-6 : f64} : (tensor<1024xf32>, tensor<1024xbf16>) -> tensor<1024xf32>
  %a = "tg.matmul"(%h, %wt) {transpose_b = true} : (tensor<1024xf32>, tensor<64x1024xbf16>) -> tensor<64xf32>
  %b = "tg.matmul"(%h, %wn) : (tensor<1024xf32>, tensor<1024x64xbf16>) -> tensor<64xf32>
  return %a, %b : tensor<64xf32>, tensor<64xf32>
}

// CHECK-LABEL: "kernel.plan"
// CHECK-NOT:   preload
// CHECK:       {index = 0 : i64, matvec = "row", name = "tg.matmul", result = #kernel.place<direct>, unroll = 4 : i64}
// CHECK-NOT:   preload
