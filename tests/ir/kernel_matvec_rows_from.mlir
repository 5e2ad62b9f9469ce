// RUN: --pass-pipeline='builtin.module(attach-target{sms=2},fuse,tile,schedule,select-kernels{matvec-rows-from=8})'
// matvec-rows-from=8: a product whose task gives each of its 16 warps at least 8 rows (%a,
// 1024 rows in one task) streams 2 rows a warp (`rows`); one with fewer (%b, 64 rows: 4 a
// warp) keeps a warp a row.
func.func @f(%x: tensor<256xf32>, %g: tensor<256xbf16> {mkc.weight = "g"}, %wa: tensor<1024x256xbf16> {mkc.weight = "wa"}, %wb: tensor<64x256xbf16> {mkc.weight = "wb"}) -> (tensor<1024xf32>, tensor<64xf32>) {
  %h = "tg.rms_norm"(%x, %g) {axis = 0 : i64, epsilon = 1.0e-6 : f64} : (tensor<256xf32>, tensor<256xbf16>) -> tensor<256xf32>
  %a = "tg.matmul"(%h, %wa) {transpose_b = true} : (tensor<256xf32>, tensor<1024x256xbf16>) -> tensor<1024xf32>
  %b = "tg.matmul"(%h, %wb) {transpose_b = true} : (tensor<256xf32>, tensor<64x256xbf16>) -> tensor<64xf32>
  return %a, %b : tensor<1024xf32>, tensor<64xf32>
}

// CHECK-LABEL: "kernel.plan"
// CHECK:       {index = 1 : i64, matvec = "row", name = "tg.matmul", preload = 1 : i64, result = #kernel.place<direct>, unroll = 1 : i64}
// CHECK:       {index = 2 : i64, matvec = "rows", name = "tg.matmul", result = #kernel.place<direct>, rows = 2 : i64, unroll = 1 : i64}
