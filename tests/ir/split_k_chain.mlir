// RUN: --pass-pipeline='builtin.module(attach-target{sms=8},split-attention{parts=1},split-k{attention=true mlp=true},fuse,tile{min-tile-bytes=1024})'
// Two layers with both projections split (`split-k{attention mlp}`): three groups a layer,
// no `proj_residual`. Each down projection's sum is onto its layer's output projection's
// sum: attention's tasks add their part onto both, the gate/up tasks onto the second, and
// both start from the layer's input. The first layer's input is the input group's result,
// whose task writes it into both sums; the second layer's input is a sum itself, so its
// sums start from a copy (`tg.cast` to its own type) that the second layer's q group makes
// (it reads the input anyway, once it is complete) and writes into both.
func.func @step(%x: tensor<32xf32>, %pos: tensor<i64>,
                %kc: tensor<16x2x8xf32>, %vc: tensor<16x2x8xf32>,
                %wn: tensor<32xbf16> {mkc.weight = "norm"},
                %wq: tensor<32x32xbf16> {mkc.weight = "q"},
                %wo: tensor<32x32xbf16> {mkc.weight = "o"},
                %wg: tensor<64x32xbf16> {mkc.weight = "g"},
                %wu: tensor<64x32xbf16> {mkc.weight = "u"},
                %wd: tensor<32x64xbf16> {mkc.weight = "d"},
                %wq1: tensor<32x32xbf16> {mkc.weight = "q1"},
                %wo1: tensor<32x32xbf16> {mkc.weight = "o1"},
                %wg1: tensor<64x32xbf16> {mkc.weight = "g1"},
                %wu1: tensor<64x32xbf16> {mkc.weight = "u1"},
                %wd1: tensor<32x64xbf16> {mkc.weight = "d1"}) -> tensor<32xf32> {
  %e = "tg.cast"(%x) : (tensor<32xf32>) -> tensor<32xbf16>
  %x0 = "tg.cast"(%e) : (tensor<32xbf16>) -> tensor<32xf32>
  %h = "tg.rms_norm"(%x0, %wn) {axis = 0 : i64, epsilon = 1.0e-6 : f64} : (tensor<32xf32>, tensor<32xbf16>) -> tensor<32xf32>
  %q = "tg.matmul"(%h, %wq) {transpose_b = true} : (tensor<32xf32>, tensor<32x32xbf16>) -> tensor<32xf32>
  %q2 = "tg.reshape"(%q) : (tensor<32xf32>) -> tensor<4x8xf32>
  %att = "tg.attention"(%q2, %kc, %vc, %pos) {scale = 0.35 : f64} : (tensor<4x8xf32>, tensor<16x2x8xf32>, tensor<16x2x8xf32>, tensor<i64>) -> tensor<4x8xf32>
  %flat = "tg.reshape"(%att) : (tensor<4x8xf32>) -> tensor<32xf32>
  %o = "tg.matmul"(%flat, %wo) {transpose_b = true} : (tensor<32xf32>, tensor<32x32xbf16>) -> tensor<32xf32>
  %a = "tg.add"(%x0, %o) : (tensor<32xf32>, tensor<32xf32>) -> tensor<32xf32>
  %n = "tg.rms_norm"(%a, %wn) {axis = 0 : i64, epsilon = 1.0e-6 : f64} : (tensor<32xf32>, tensor<32xbf16>) -> tensor<32xf32>
  %g = "tg.matmul"(%n, %wg) {transpose_b = true} : (tensor<32xf32>, tensor<64x32xbf16>) -> tensor<64xf32>
  %u = "tg.matmul"(%n, %wu) {transpose_b = true} : (tensor<32xf32>, tensor<64x32xbf16>) -> tensor<64xf32>
  %s = "tg.silu"(%g) : (tensor<64xf32>) -> tensor<64xf32>
  %m = "tg.mul"(%s, %u) : (tensor<64xf32>, tensor<64xf32>) -> tensor<64xf32>
  %d = "tg.matmul"(%m, %wd) {transpose_b = true} : (tensor<64xf32>, tensor<32x64xbf16>) -> tensor<32xf32>
  %b = "tg.add"(%a, %d) : (tensor<32xf32>, tensor<32xf32>) -> tensor<32xf32>
  %h1 = "tg.rms_norm"(%b, %wn) {axis = 0 : i64, epsilon = 1.0e-6 : f64} : (tensor<32xf32>, tensor<32xbf16>) -> tensor<32xf32>
  %q1 = "tg.matmul"(%h1, %wq1) {transpose_b = true} : (tensor<32xf32>, tensor<32x32xbf16>) -> tensor<32xf32>
  %q12 = "tg.reshape"(%q1) : (tensor<32xf32>) -> tensor<4x8xf32>
  %att1 = "tg.attention"(%q12, %kc, %vc, %pos) {scale = 0.35 : f64} : (tensor<4x8xf32>, tensor<16x2x8xf32>, tensor<16x2x8xf32>, tensor<i64>) -> tensor<4x8xf32>
  %flat1 = "tg.reshape"(%att1) : (tensor<4x8xf32>) -> tensor<32xf32>
  %o1 = "tg.matmul"(%flat1, %wo1) {transpose_b = true} : (tensor<32xf32>, tensor<32x32xbf16>) -> tensor<32xf32>
  %a1 = "tg.add"(%b, %o1) : (tensor<32xf32>, tensor<32xf32>) -> tensor<32xf32>
  %n1 = "tg.rms_norm"(%a1, %wn) {axis = 0 : i64, epsilon = 1.0e-6 : f64} : (tensor<32xf32>, tensor<32xbf16>) -> tensor<32xf32>
  %g1 = "tg.matmul"(%n1, %wg1) {transpose_b = true} : (tensor<32xf32>, tensor<64x32xbf16>) -> tensor<64xf32>
  %u1 = "tg.matmul"(%n1, %wu1) {transpose_b = true} : (tensor<32xf32>, tensor<64x32xbf16>) -> tensor<64xf32>
  %s1 = "tg.silu"(%g1) : (tensor<64xf32>) -> tensor<64xf32>
  %m1 = "tg.mul"(%s1, %u1) : (tensor<64xf32>, tensor<64xf32>) -> tensor<64xf32>
  %d1 = "tg.matmul"(%m1, %wd1) {transpose_b = true} : (tensor<64xf32>, tensor<32x64xbf16>) -> tensor<32xf32>
  %b1 = "tg.add"(%a1, %d1) : (tensor<32xf32>, tensor<32xf32>) -> tensor<32xf32>
  return %b1 : tensor<32xf32>
}

// CHECK-LABEL: func.func @step
// CHECK:       "tg.matmul_acc"
// CHECK:       }) {kind = "attention"}
// CHECK:       "tg.matmul_acc"(%{{[0-9]+}}, %{{.*}}, %[[A0:arg[0-9]+]])
// CHECK:       }) {kind = "mlp"}
// CHECK-NEXT:  %{{[0-9]+}}:2 = "fused.group"
// CHECK-NEXT:  ^bb0
// CHECK-NEXT:    "tg.cast"(%[[IN:arg[0-9]+]]) : (tensor<32xf32>) -> tensor<32xf32>
// CHECK-NEXT:    "tg.rms_norm"(%[[IN]]
// CHECK:       }) {kind = "attention"}
// CHECK:       }) {kind = "mlp"}
// CHECK-NOT:   proj_residual
// CHECK-LABEL: "task.graph"
// CHECK:       "task.task"() {{.*}} group = 0 : i64, {{.*}} writes = [#task.range<arena, 0, 128>, #task.range<arena, [[A:[0-9]+]], [[A_END:[0-9]+]]>, #task.range<arena, [[B:[0-9]+]], [[B_END:[0-9]+]]>]}
// CHECK:       "task.task"() {adds = [#task.range<arena, [[A]], [[A_END]]>, #task.range<arena, [[B]], [[B_END]]>], {{.*}} kind = "attention"
// CHECK:       "task.task"() {adds = [#task.range<arena, [[B]], [[B_END]]>], {{.*}} kind = "mlp", {{.*}} #task.range<arena, [[A]], [[A_END]]>]
// CHECK:       "task.task"() {{.*}} group = 4 : i64, {{.*}} output = 0 : i64, reads = [#task.range<arena, [[B]], [[B_END]]>], {{.*}} writes = [#task.range<arena, {{[0-9]+}}, {{[0-9]+}}>, #task.range<arena, [[A1:[0-9]+]], [[A1_END:[0-9]+]]>, #task.range<arena, [[B1:[0-9]+]], [[B1_END:[0-9]+]]>]}
// CHECK:       "task.task"() {adds = [#task.range<arena, [[A1]], [[A1_END]]>, #task.range<arena, [[B1]], [[B1_END]]>], {{.*}} group = 5 : i64, kind = "attention"
// CHECK:       "task.task"() {adds = [#task.range<arena, [[B1]], [[B1_END]]>], {{.*}} group = 6 : i64, kind = "mlp", {{.*}} #task.range<arena, [[A1]], [[A1_END]]>]
