// RUN: --pass-pipeline='builtin.module(attach-target{sms=2},fuse,tile,schedule,select-kernels{pair-products=true})'
// pair-products: an MLP's gate and up (`row` products of one input row over the same rows)
// run in one loop, each naming the other (`with`); the product of the same row over other
// rows (%k, a code of its own) stays alone.
func.func @f(%x: tensor<256xf32>, %g: tensor<256xbf16> {mkc.weight = "g"}, %wg: tensor<128x256xbf16> {mkc.weight = "wg"}, %wu: tensor<128x256xbf16> {mkc.weight = "wu"}, %wk: tensor<32x256xbf16> {mkc.weight = "wk"}) -> (tensor<128xf32>, tensor<32xf32>) {
  %h = "tg.rms_norm"(%x, %g) {axis = 0 : i64, epsilon = 1.0e-6 : f64} : (tensor<256xf32>, tensor<256xbf16>) -> tensor<256xf32>
  %a = "tg.matmul"(%h, %wg) {transpose_b = true} : (tensor<256xf32>, tensor<128x256xbf16>) -> tensor<128xf32>
  %s = "tg.silu"(%a) : (tensor<128xf32>) -> tensor<128xf32>
  %b = "tg.matmul"(%h, %wu) {transpose_b = true} : (tensor<256xf32>, tensor<128x256xbf16>) -> tensor<128xf32>
  %y = "tg.mul"(%b, %s) : (tensor<128xf32>, tensor<128xf32>) -> tensor<128xf32>
  %k = "tg.matmul"(%h, %wk) {transpose_b = true} : (tensor<256xf32>, tensor<32x256xbf16>) -> tensor<32xf32>
  return %y, %k : tensor<128xf32>, tensor<32xf32>
}

// CHECK-LABEL: "kernel.plan"
// CHECK:       "kernel.code"
// CHECK:       {index = 1 : i64, matvec = "row", name = "tg.matmul", preload = 1 : i64, result = #kernel.place<direct>, unroll = 1 : i64}
// CHECK:       kind = "mlp_gate_up"
// CHECK:       {index = 2 : i64, matvec = "row", name = "tg.matmul", preload = 1 : i64, result = #kernel.place<shared, 1616, 512>, unroll = 1 : i64, with = 3 : i64}
// CHECK-NEXT:  {index = 3 : i64, matvec = "row", name = "tg.matmul", preload = 1 : i64, result = #kernel.place<shared, 2128, 512>, unroll = 1 : i64, with = 2 : i64}
// CHECK-NEXT:  {index = 4 : i64, name = "tg.silu"
