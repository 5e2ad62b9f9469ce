// RUN: --pass-pipeline='builtin.module(attach-target{sms=16},split-attention{parts=4},fuse,tile{min-tile-bytes=4096})'
// Decode attention over a 64-position cache becomes 4 parts over runs of the context and
// their combine. Tiles cut the parts apart (and each part's output lanes in two, for 16
// SMs); the combine is a group of its own (fuse's default `combine=task`), one task run on
// the last signal of the parts' event, and the output projection waits on its event.
func.func @step(%x: tensor<32xf32>, %q: tensor<4x8xf32>, %pos: tensor<i64>,
                %kc: tensor<64x2x8xf32>, %vc: tensor<64x2x8xf32>,
                %wo: tensor<32x32xbf16> {mkc.weight = "o"}) -> tensor<32xf32> {
  %att = "tg.attention"(%q, %kc, %vc, %pos) {scale = 0.35 : f64} : (tensor<4x8xf32>, tensor<64x2x8xf32>, tensor<64x2x8xf32>, tensor<i64>) -> tensor<4x8xf32>
  %flat = "tg.reshape"(%att) : (tensor<4x8xf32>) -> tensor<32xf32>
  %o = "tg.matmul"(%flat, %wo) {transpose_b = true} : (tensor<32xf32>, tensor<32x32xbf16>) -> tensor<32xf32>
  %y = "tg.add"(%x, %o) : (tensor<32xf32>, tensor<32xf32>) -> tensor<32xf32>
  return %y : tensor<32xf32>
}

// CHECK-LABEL: func.func @step
// CHECK:       "fused.group"
// CHECK-NEXT:  ^bb0
// CHECK-NEXT:    "tg.attention_partial"({{.*}}) {parts = 4 : i64, scale = 0.35 : f64} {{.*}} -> tensor<4x4x10xf32>
// CHECK-NEXT:    "fused.yield"
// CHECK-NEXT:  }) {kind = "attention"}
// CHECK-NEXT:  "fused.group"
// CHECK-NEXT:  ^bb0
// CHECK-NEXT:    "tg.attention_combine"
// CHECK-NEXT:    "tg.reshape"
// CHECK-NEXT:    "fused.yield"
// CHECK-NEXT:  }) {kind = "attention_combine"}
// CHECK:       "tg.matmul"
// CHECK-NEXT:  "tg.add"
// CHECK:       }) {kind = "proj_residual"}
// CHECK-NOT:   "tg.attention"(
// CHECK-LABEL: "task.graph"
// CHECK:       "task.event"() {target = 8 : i64}
// CHECK-NEXT:  "task.event"() {target = 1 : i64}
// CHECK-NEXT:  kind = "attention", {{.*}} signals = [0 : i64], tile = [#task.box<0:1, 0:4, 0:5>], waits = []
// CHECK-NEXT:  kind = "attention", {{.*}} signals = [0 : i64], tile = [#task.box<0:1, 0:4, 5:10>], waits = []
// CHECK-NEXT:  tile = [#task.box<1:2, 0:4, 0:5>]
// CHECK-NEXT:  tile = [#task.box<1:2, 0:4, 5:10>]
// CHECK-NEXT:  tile = [#task.box<2:3, 0:4, 0:5>]
// CHECK-NEXT:  tile = [#task.box<2:3, 0:4, 5:10>]
// CHECK-NEXT:  tile = [#task.box<3:4, 0:4, 0:5>]
// CHECK-NEXT:  tile = [#task.box<3:4, 0:4, 5:10>]
// CHECK-NEXT:  kind = "attention_combine", on_last_signal = true, {{.*}} signals = [1 : i64], tile = [#task.box<0:32>], waits = [0 : i64]
// CHECK-NEXT:  kind = "proj_residual", {{.*}} signals = [], tile = [#task.box<0:32>], waits = [1 : i64]
// CHECK-NEXT:  }) : () -> ()
