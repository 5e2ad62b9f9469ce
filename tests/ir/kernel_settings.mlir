// RUN: --pass-pipeline='builtin.module(attach-target{sms=2},fuse,tile,schedule,select-kernels{threads=256 event-fences=true parallel-waits=false weights-evict-first=false prefetch-next=false l2-prefetch=4096 max-registers=0 early-inputs=false thread-number=mov tile-extents=constant poll-sleep=0})'
// The kernel-wide settings the options choose, as the plan records them.
func.func @f(%x: tensor<256xf32>, %g: tensor<256xbf16> {mkc.weight = "g"}, %wt: tensor<64x256xbf16> {mkc.weight = "wt"}, %wn: tensor<256x64xbf16> {mkc.weight = "wn"}) -> (tensor<64xf32>, tensor<64xf32>) {
  %h = "tg.rms_norm"(%x, %g) {axis = 0 : i64, epsilon = 1.0e-6 : f64} : (tensor<256xf32>, tensor<256xbf16>) -> tensor<256xf32>
  %a = "tg.matmul"(%h, %wt) {transpose_b = true} : (tensor<256xf32>, tensor<64x256xbf16>) -> tensor<64xf32>
  %b = "tg.matmul"(%h, %wn) : (tensor<256xf32>, tensor<256x64xbf16>) -> tensor<64xf32>
  return %a, %b : tensor<64xf32>, tensor<64xf32>
}

// 256 threads: the norm's per-warp partial sums take 8 words, not 16.
// CHECK-LABEL: "kernel.plan"
// CHECK-NEXT:  "kernel.code"
// CHECK-NEXT:    name = "tg.rms_norm", {{.*}} temps = [#kernel.place<shared, 0, 16>, #kernel.place<shared, 16, 32>, #kernel.place<shared, 48, 512>]
// CHECK:       }) {events = "fences", extents = "constant", inputs = "after-wait", poll_sleep = 0 : i64, prefetch = "own", prefetch_bytes = 4096 : i64, registers = 0 : i64, ring_slot_bytes = 32768 : i64, ring_slots = 0 : i64, smem_scratch = 98304 : i64, thread_number = "mov", threads = 256 : i64, waits = "serial", weight_loads = "normal"}
