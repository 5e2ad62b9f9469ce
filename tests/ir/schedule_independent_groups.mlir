// RUN: --pass-pipeline='builtin.module(attach-target{sms=2},fuse,tile,schedule)' --pass-statistics
// Two independent products (no events), each cut in 2 tiles of 128 rows, on 2 SMs: each SM
// takes one tile of each, and the estimate meets the bandwidth floor.
func.func @f(%x: tensor<256xf32>, %y: tensor<256xf32>, %wa: tensor<256x256xbf16> {mkc.weight = "a"}, %wb: tensor<256x256xbf16> {mkc.weight = "b"}) -> (tensor<256xf32>, tensor<256xf32>) {
  %a = "tg.matmul"(%x, %wa) {transpose_b = true} : (tensor<256xf32>, tensor<256x256xbf16>) -> tensor<256xf32>
  %b = "tg.matmul"(%y, %wb) {transpose_b = true} : (tensor<256xf32>, tensor<256x256xbf16>) -> tensor<256xf32>
  return %a, %b : tensor<256xf32>, tensor<256xf32>
}

// CHECK-LABEL: "task.graph"
// CHECK-NOT:   "task.event"
// CHECK:       group = 0 : i64, {{.*}} slot = 0 : i64, sm = 0 : i64, tile = [#task.box<0:128>], waits = []
// CHECK-NEXT:  group = 0 : i64, {{.*}} slot = 0 : i64, sm = 1 : i64, tile = [#task.box<128:256>], waits = []
// CHECK-NEXT:  group = 1 : i64, {{.*}} slot = 1 : i64, sm = 0 : i64, tile = [#task.box<0:128>], waits = []
// CHECK-NEXT:  group = 1 : i64, {{.*}} slot = 1 : i64, sm = 1 : i64, tile = [#task.box<128:256>], waits = []
// CHECK:       'schedule'
// CHECK-NEXT:  (tasks) 4 :
// CHECK-NEXT:  (busy-sms) 2 :
// CHECK-NEXT:  (estimate-ns) 88 :
// CHECK-NEXT:  (floor-ns) 88 :
