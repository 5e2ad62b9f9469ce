// RUN: --pass-pipeline='builtin.module(attach-target{sms=4},fuse,tile,schedule)' --pass-statistics
// A program of small tasks that wait on each other: a task on another SM than its
// producer pays the event's latency (1 us on the H100 preset), more than the whole
// program's transfers, so every task queues on SM 0 though 4 are there.
func.func @f(%x: tensor<256xf32>, %g: tensor<256xbf16> {mkc.weight = "g"}, %wt: tensor<64x256xbf16> {mkc.weight = "wt"}, %wn: tensor<256x64xbf16> {mkc.weight = "wn"}) -> (tensor<64xf32>, tensor<64xf32>) {
  %h = "tg.rms_norm"(%x, %g) {axis = 0 : i64, epsilon = 1.0e-6 : f64} : (tensor<256xf32>, tensor<256xbf16>) -> tensor<256xf32>
  %a = "tg.matmul"(%h, %wt) {transpose_b = true} : (tensor<256xf32>, tensor<64x256xbf16>) -> tensor<64xf32>
  %b = "tg.matmul"(%h, %wn) : (tensor<256xf32>, tensor<256x64xbf16>) -> tensor<64xf32>
  return %a, %b : tensor<64xf32>, tensor<64xf32>
}

// CHECK-LABEL: "task.graph"
// CHECK:       output = 0 : i64, {{.*}} slot = 0 : i64, sm = 0 : i64, tile = [#task.box<0:256>]
// CHECK-NEXT:  output = 1 : i64, {{.*}} slot = 1 : i64, sm = 0 : i64, tile = [#task.box<0:64>]
// CHECK-NEXT:  group = 1 : i64, {{.*}} slot = 2 : i64, sm = 0 : i64, tile = [#task.box<0:32>]
// CHECK-NEXT:  group = 1 : i64, {{.*}} slot = 3 : i64, sm = 0 : i64, tile = [#task.box<32:64>]
// CHECK:       'schedule'
// CHECK-NEXT:  (tasks) 4 :
// CHECK-NEXT:  (busy-sms) 1 :
