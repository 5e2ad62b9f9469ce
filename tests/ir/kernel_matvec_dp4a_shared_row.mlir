// RUN: --pass-pipeline='builtin.module(attach-target{sms=2},fuse,tile,schedule,select-kernels)'
// Two `dp4a` products of one row in a task (an MLP's gate and up) share the buffer of the
// rounded row: the plan gives both the same temporary, and the kernel rounds the row once,
// for the first (driver/tests/quantized.rs counts the roundings).
func.func @f(%x: tensor<64xf32>, %g: tensor<128x64x!mkc.q4_0> {mkc.weight = "g"}, %u: tensor<128x64x!mkc.q4_0> {mkc.weight = "u"}) -> tensor<128xf32> {
  %h = "tg.add"(%x, %x) : (tensor<64xf32>, tensor<64xf32>) -> tensor<64xf32>
  %a = "tg.matmul"(%h, %g) {act_q8 = true, transpose_b = true} : (tensor<64xf32>, tensor<128x64x!mkc.q4_0>) -> tensor<128xf32>
  %s = "tg.silu"(%a) : (tensor<128xf32>) -> tensor<128xf32>
  %b = "tg.matmul"(%h, %u) {act_q8 = true, transpose_b = true} : (tensor<64xf32>, tensor<128x64x!mkc.q4_0>) -> tensor<128xf32>
  %m = "tg.mul"(%b, %s) : (tensor<128xf32>, tensor<128xf32>) -> tensor<128xf32>
  return %m : tensor<128xf32>
}

// CHECK-LABEL: "kernel.plan"
// CHECK:       "kernel.op"() {index = 0 : i64, matvec = "dp4a", name = "tg.matmul", preload = 1 : i64, result = #kernel.place<shared, 0, 512>, temps = [#kernel.place<shared, 512, 240>]}
// CHECK-NEXT:  "kernel.op"() {index = 1 : i64, matvec = "dp4a", name = "tg.matmul", result = #kernel.place<shared, 752, 512>, temps = [#kernel.place<shared, 512, 240>]}
// CHECK-NEXT:  "kernel.op"() {index = 2 : i64, name = "tg.silu"
