// RUN: --pass-pipeline='builtin.module(attach-target{sms=4},fuse,tile{min-tile-bytes=65536})' --pass-statistics
// The chain of tile_matmul_chain_events with min-tile-bytes=65536: a 64-row tile moves 32
// KiB of weights, too little, so each group is cut into 2 tiles of 128 rows instead of 4.
func.func @f(%x: tensor<256xf32>, %w1: tensor<256x256xbf16> {mkc.weight = "w1"}, %w2: tensor<256x256xbf16> {mkc.weight = "w2"}, %w3: tensor<256x256xbf16> {mkc.weight = "w3"}) -> tensor<256xf32> {
  %a = "tg.matmul"(%x, %w1) {transpose_b = true} : (tensor<256xf32>, tensor<256x256xbf16>) -> tensor<256xf32>
  %b = "tg.matmul"(%a, %w2) {transpose_b = true} : (tensor<256xf32>, tensor<256x256xbf16>) -> tensor<256xf32>
  %c = "tg.matmul"(%b, %w3) {transpose_b = true} : (tensor<256xf32>, tensor<256x256xbf16>) -> tensor<256xf32>
  %y = "tg.add"(%a, %c) : (tensor<256xf32>, tensor<256xf32>) -> tensor<256xf32>
  return %y : tensor<256xf32>
}

// CHECK-LABEL: "task.graph"
// CHECK:       "task.event"() {target = 2 : i64}
// CHECK-NEXT:  "task.event"() {target = 1 : i64}
// CHECK-NEXT:  "task.event"() {target = 1 : i64}
// CHECK-NEXT:  "task.event"() {target = 2 : i64}
// CHECK-NEXT:  group = 0 : i64, {{.*}} reads = [#task.range<weights, 0, 65536>, {{.*}} tile = [#task.box<0:128>], waits = []
// CHECK-NEXT:  group = 0 : i64, {{.*}} tile = [#task.box<128:256>], waits = []
// CHECK-NEXT:  group = 1 : i64, {{.*}} tile = [#task.box<0:128>], waits = [0 : i64]
// CHECK-NEXT:  group = 1 : i64, {{.*}} tile = [#task.box<128:256>], waits = [0 : i64]
// CHECK-NEXT:  group = 2 : i64, {{.*}} tile = [#task.box<0:128>], waits = [1 : i64, 3 : i64]
// CHECK-NEXT:  group = 2 : i64, {{.*}} tile = [#task.box<128:256>], waits = [2 : i64, 3 : i64]
// CHECK-NEXT:  }) : () -> ()
// CHECK:       'tile'
// CHECK-NEXT:  (tasks) 6 :
// CHECK-NEXT:  (events) 4 :
