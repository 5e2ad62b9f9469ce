// RUN: --pass-pipeline='builtin.module(attach-target{sms=2},fuse,tile,schedule,select-kernels{stream-slots=2 slot-bytes=256})'
// A ring whose slots (256 bytes) cannot hold a 512-byte weight row: the product keeps
// ordinary loads (`row`).
func.func @f(%x: tensor<256xf32>, %g: tensor<256xbf16> {mkc.weight = "g"}, %wt: tensor<64x256xbf16> {mkc.weight = "wt"}, %wn: tensor<256x64xbf16> {mkc.weight = "wn"}) -> (tensor<64xf32>, tensor<64xf32>) {
  %h = "tg.rms_norm"(%x, %g) {axis = 0 : i64, epsilon = 1.0e-6 : f64} : (tensor<256xf32>, tensor<256xbf16>) -> tensor<256xf32>
  %a = "tg.matmul"(%h, %wt) {transpose_b = true} : (tensor<256xf32>, tensor<64x256xbf16>) -> tensor<64xf32>
  %b = "tg.matmul"(%h, %wn) : (tensor<256xf32>, tensor<256x64xbf16>) -> tensor<64xf32>
  return %a, %b : tensor<64xf32>, tensor<64xf32>
}

// CHECK-LABEL: "kernel.plan"
// CHECK-NOT:   matvec = "ring"
// CHECK:       {index = 0 : i64, matvec = "row", name = "tg.matmul"
// CHECK:       ring_slot_bytes = 256 : i64, ring_slots = 2 : i64,
