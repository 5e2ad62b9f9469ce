// RUN: --pass-pipeline='builtin.module(attach-target{sms=4},fuse,tile)' --pass-statistics
// A chain of three matrix-vector products on 4 SMs, the last with a residual add of the
// first's output: each group is cut into 4 tiles of 64 rows. The second reads all of the
// first (event 0, target 4); a tile of the third reads the whole second (event 5) and
// only its own rows of the first, so each first-group tile also signals an event of its
// own (events 1-4, target 1).
func.func @f(%x: tensor<256xf32>, %w1: tensor<256x256xbf16> {mkc.weight = "w1"}, %w2: tensor<256x256xbf16> {mkc.weight = "w2"}, %w3: tensor<256x256xbf16> {mkc.weight = "w3"}) -> tensor<256xf32> {
  %a = "tg.matmul"(%x, %w1) {transpose_b = true} : (tensor<256xf32>, tensor<256x256xbf16>) -> tensor<256xf32>
  %b = "tg.matmul"(%a, %w2) {transpose_b = true} : (tensor<256xf32>, tensor<256x256xbf16>) -> tensor<256xf32>
  %c = "tg.matmul"(%b, %w3) {transpose_b = true} : (tensor<256xf32>, tensor<256x256xbf16>) -> tensor<256xf32>
  %y = "tg.add"(%a, %c) : (tensor<256xf32>, tensor<256xf32>) -> tensor<256xf32>
  return %y : tensor<256xf32>
}

// CHECK-LABEL: "task.graph"
// CHECK:       "task.event"() {target = 4 : i64}
// CHECK-COUNT-4: "task.event"() {target = 1 : i64}
// CHECK-NEXT:  "task.event"() {target = 4 : i64}
// CHECK-NEXT:  group = 0 : i64, {{.*}} signals = [0 : i64, 1 : i64], tile = [#task.box<0:64>], waits = []
// CHECK-NEXT:  group = 0 : i64, {{.*}} signals = [0 : i64, 2 : i64], tile = [#task.box<64:128>], waits = []
// CHECK-NEXT:  group = 0 : i64, {{.*}} signals = [0 : i64, 3 : i64], tile = [#task.box<128:192>], waits = []
// CHECK-NEXT:  group = 0 : i64, {{.*}} signals = [0 : i64, 4 : i64], tile = [#task.box<192:256>], waits = []
// The second reads all of the first.
// CHECK-NEXT:  group = 1 : i64, {{.*}} reads = [#task.range<weights, 131072, 163840>, #task.range<arena, 0, 1024>], signals = [5 : i64], tile = [#task.box<0:64>], waits = [0 : i64]
// CHECK-NEXT:  group = 1 : i64, {{.*}} tile = [#task.box<64:128>], waits = [0 : i64]
// CHECK-NEXT:  group = 1 : i64, {{.*}} tile = [#task.box<128:192>], waits = [0 : i64]
// CHECK-NEXT:  group = 1 : i64, {{.*}} tile = [#task.box<192:256>], waits = [0 : i64]
// The third: its 64 rows of the first (256 bytes), all of the second.
// CHECK-NEXT:  group = 2 : i64, {{.*}} reads = [#task.range<weights, 262144, 294912>, #task.range<arena, 0, 256>, #task.range<arena, 1024, 2048>], signals = [], tile = [#task.box<0:64>], waits = [1 : i64, 5 : i64]
// CHECK-NEXT:  group = 2 : i64, {{.*}} #task.range<arena, 256, 512>, {{.*}} tile = [#task.box<64:128>], waits = [2 : i64, 5 : i64]
// CHECK-NEXT:  group = 2 : i64, {{.*}} #task.range<arena, 512, 768>, {{.*}} tile = [#task.box<128:192>], waits = [3 : i64, 5 : i64]
// CHECK-NEXT:  group = 2 : i64, {{.*}} tile = [#task.box<192:256>], waits = [4 : i64, 5 : i64]
// CHECK-NEXT:  }) : () -> ()
// CHECK:       'tile'
// CHECK-NEXT:  (tasks) 12 :
// CHECK-NEXT:  (events) 6 :
