// RUN: --pass-pipeline='builtin.module(attach-target{sms=4},fuse,tile{min-tile-bytes=4096},schedule)'
// An MLP block with a residual: fused into gate/up and down groups, each cut into tiles
// over its output rows; a down tile reads all of the MLP activation (one counter) and its
// own slice of the residual.
func.func @step(%x: tensor<64xf32>,
                %wn: tensor<64xbf16> {mkc.weight = "n"},
                %wg: tensor<96x64xbf16> {mkc.weight = "g"},
                %wu: tensor<96x64xbf16> {mkc.weight = "u"},
                %wd: tensor<64x96xbf16> {mkc.weight = "d"}) -> tensor<64xf32> {
  %h = "tg.rms_norm"(%x, %wn) {axis = 0 : i64, epsilon = 1.0e-6 : f64} : (tensor<64xf32>, tensor<64xbf16>) -> tensor<64xf32>
  %g = "tg.matmul"(%h, %wg) {transpose_b = true} : (tensor<64xf32>, tensor<96x64xbf16>) -> tensor<96xf32>
  %s = "tg.silu"(%g) : (tensor<96xf32>) -> tensor<96xf32>
  %u = "tg.matmul"(%h, %wu) {transpose_b = true} : (tensor<64xf32>, tensor<96x64xbf16>) -> tensor<96xf32>
  %m = "tg.mul"(%u, %s) : (tensor<96xf32>, tensor<96xf32>) -> tensor<96xf32>
  %d = "tg.matmul"(%m, %wd) {transpose_b = true} : (tensor<96xf32>, tensor<64x96xbf16>) -> tensor<64xf32>
  %y = "tg.add"(%x, %d) : (tensor<64xf32>, tensor<64xf32>) -> tensor<64xf32>
  return %y : tensor<64xf32>
}

// CHECK-LABEL: func.func @step
// CHECK:       "tg.rms_norm"
// CHECK-NEXT:  "tg.matmul"
// CHECK-NEXT:  "tg.matmul"
// CHECK-NEXT:  "tg.silu"
// CHECK-NEXT:  "tg.mul"
// CHECK-NEXT:  "fused.yield"
// CHECK-NEXT:  }) {kind = "mlp_gate_up"}
// CHECK:       "tg.matmul"
// CHECK-NEXT:  "tg.add"
// CHECK-NEXT:  "fused.yield"
// CHECK-NEXT:  }) {kind = "proj_residual"}
// The gate/up tiles (32 rows each) signal one event the down tiles wait on.
// CHECK-LABEL: "task.graph"
// CHECK:       "task.event"() {target = 3 : i64}
// CHECK-NEXT:  kind = "mlp_gate_up", {{.*}} signals = [0 : i64], slot = 0 : i64, sm = 0 : i64, tile = [#task.box<0:32>], waits = []
// CHECK-NEXT:  kind = "mlp_gate_up", {{.*}} signals = [0 : i64], slot = 0 : i64, sm = 1 : i64, tile = [#task.box<32:64>], waits = []
// CHECK-NEXT:  kind = "mlp_gate_up", {{.*}} signals = [0 : i64], slot = 0 : i64, sm = 2 : i64, tile = [#task.box<64:96>], waits = []
// A down tile reads all of the activation (arena 0..384) and its rows of the residual; the
// first runs on the last gate/up signal (no SM of its own), the second on SM 3.
// CHECK-NEXT:  kind = "proj_residual", on_last_signal = true, {{.*}} reads = [#task.range<weights, 24832, 30976>, #task.range<arena, 0, 384>, #task.range<inputs, 0, 128>], signals = [], tile = [#task.box<0:32>], waits = [0 : i64]
// CHECK-NEXT:  kind = "proj_residual", output = 0 : i64, reads = [#task.range<weights, 30976, 37120>, #task.range<arena, 0, 384>, #task.range<inputs, 128, 256>], signals = [], slot = 0 : i64, sm = 3 : i64, tile = [#task.box<32:64>], waits = [0 : i64]
// CHECK-NEXT:  }) : () -> ()
