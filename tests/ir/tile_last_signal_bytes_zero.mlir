// RUN: --pass-pipeline='builtin.module(attach-target{sms=4},fuse,tile{min-tile-bytes=4096 last-signal-bytes=0})' --pass-statistics
// tile_mlp_residual's MLP with last-signal-bytes=0: no task runs on an event's last signal
// (there is no attention combine), so both down-projection tiles wait in a queue.
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

// CHECK-LABEL: "task.graph"
// CHECK-NOT:   on_last_signal
// CHECK:       kind = "proj_residual", output = 0 : i64, {{.*}} tile = [#task.box<0:32>], waits = [0 : i64]
// CHECK-NEXT:  kind = "proj_residual", output = 0 : i64, {{.*}} tile = [#task.box<32:64>], waits = [0 : i64]
// CHECK-NOT:   on_last_signal
// CHECK:       (tasks) 5 :
// CHECK-NEXT:  (events) 1 :
