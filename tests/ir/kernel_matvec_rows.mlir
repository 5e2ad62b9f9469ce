// RUN: --pass-pipeline='builtin.module(attach-target{sms=2},fuse,tile,schedule,select-kernels{matvec-rows=2})'
// matvec-rows=2: the `row` product streams 2 weight rows a warp (`rows`); `lanes` stays.
func.func @f(%x: tensor<256xf32>, %g: tensor<256xbf16> {mkc.weight = "g"}, %wt: tensor<64x256xbf16> {mkc.weight = "wt"}, %wn: tensor<256x64xbf16> {mkc.weight = "wn"}) -> (tensor<64xf32>, tensor<64xf32>) {
  %h = "tg.rms_norm"(%x, %g) {axis = 0 : i64, epsilon = 1.0e-6 : f64} : (tensor<256xf32>, tensor<256xbf16>) -> tensor<256xf32>
  %a = "tg.matmul"(%h, %wt) {transpose_b = true} : (tensor<256xf32>, tensor<64x256xbf16>) -> tensor<64xf32>
  %b = "tg.matmul"(%h, %wn) : (tensor<256xf32>, tensor<256x64xbf16>) -> tensor<64xf32>
  return %a, %b : tensor<64xf32>, tensor<64xf32>
}

// CHECK-LABEL: "kernel.plan"
// CHECK:       {index = 1 : i64, matvec = "lanes", name = "tg.matmul"
// CHECK-NOT:   rows =
// CHECK-SAME:  }
// CHECK:       {index = 0 : i64, matvec = "rows", name = "tg.matmul", result = #kernel.place<direct>, rows = 2 : i64, unroll = 1 : i64}
// CHECK-NOT:   matvec = "row"
