// RUN: --pass-pipeline='builtin.module(attach-target{sms=4},split-k,fuse,tile{min-tile-bytes=1024})'
// The split-K group is cut along K (boxes of its [K, N] = [256, 64]): each task reads its
// slice of the gate/up rows and of the down weight, which is stored [K, N] (perm [1, 0]) so
// that the slice is one span, and adds its part onto the sum (`adds`, no `writes`). The
// output projection's tasks write their tiles twice: the residual (arena 0..256) and the
// sum's initial value (arena 256..512), which lives from that step on.
func.func @f(%r: tensor<64xf32>, %g: tensor<64xbf16> {mkc.weight = "g"}, %wg: tensor<256x64xbf16> {mkc.weight = "wg"}, %wu: tensor<256x64xbf16> {mkc.weight = "wu"}, %wd: tensor<64x256xbf16> {mkc.weight = "wd"}, %wo: tensor<64x64xbf16> {mkc.weight = "wo"}) -> tensor<64xf32> {
  %o = "tg.matmul"(%r, %wo) {transpose_b = true} : (tensor<64xf32>, tensor<64x64xbf16>) -> tensor<64xf32>
  %r1 = "tg.add"(%r, %o) : (tensor<64xf32>, tensor<64xf32>) -> tensor<64xf32>
  %n = "tg.rms_norm"(%r1, %g) {axis = 0 : i64, epsilon = 1.0e-6 : f64} : (tensor<64xf32>, tensor<64xbf16>) -> tensor<64xf32>
  %a = "tg.matmul"(%n, %wg) {transpose_b = true} : (tensor<64xf32>, tensor<256x64xbf16>) -> tensor<256xf32>
  %s = "tg.silu"(%a) : (tensor<256xf32>) -> tensor<256xf32>
  %b = "tg.matmul"(%n, %wu) {transpose_b = true} : (tensor<64xf32>, tensor<256x64xbf16>) -> tensor<256xf32>
  %h = "tg.mul"(%b, %s) : (tensor<256xf32>, tensor<256xf32>) -> tensor<256xf32>
  %d = "tg.matmul"(%h, %wd) {transpose_b = true} : (tensor<256xf32>, tensor<64x256xbf16>) -> tensor<64xf32>
  %y = "tg.add"(%r1, %d) : (tensor<64xf32>, tensor<64xf32>) -> tensor<64xf32>
  return %y : tensor<64xf32>
}

// CHECK-LABEL: "task.graph"
// CHECK:       "task.place"() {arg = 4 : i64, buffer = "weights", offset = [[WD:[0-9]+]] : i64, perm = [1 : i64, 0 : i64]}
// CHECK:       "task.place"() {buffer = "arena", group = 0 : i64, offset = 0 : i64, result = 0 : i64}
// CHECK-NEXT:  "task.place"() {buffer = "arena", group = 1 : i64, offset = 256 : i64, result = 0 : i64}
// CHECK:       kind = "proj_residual", {{.*}} tile = [#task.box<0:16>], {{.*}} writes = [#task.range<arena, 0, 64>, #task.range<arena, 256, 320>]}
// CHECK:       kind = "proj_residual", {{.*}} tile = [#task.box<48:64>], {{.*}} writes = [#task.range<arena, 192, 256>, #task.range<arena, 448, 512>]}
// CHECK-NEXT:  "task.task"() {adds = [#task.range<arena, 256, 512>], {{.*}} kind = "mlp", {{.*}} #task.range<weights, [[WD]], 82176>, #task.range<arena, 0, 256>], {{.*}} tile = [#task.box<0:64, 0:64>], waits = [0 : i64], writes = []}
// CHECK-NEXT:  "task.task"() {adds = [#task.range<arena, 256, 512>], {{.*}} tile = [#task.box<64:128, 0:64>], waits = [0 : i64], writes = []}
// CHECK-NEXT:  "task.task"() {adds = [#task.range<arena, 256, 512>], {{.*}} tile = [#task.box<128:192, 0:64>], waits = [0 : i64], writes = []}
// CHECK-NEXT:  "task.task"() {adds = [#task.range<arena, 256, 512>], {{.*}} #task.range<weights, 98560, 106752>, #task.range<arena, 0, 256>], {{.*}} tile = [#task.box<192:256, 0:64>], waits = [0 : i64], writes = []}
