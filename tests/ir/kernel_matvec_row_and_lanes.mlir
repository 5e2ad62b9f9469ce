// RUN: --pass-pipeline='builtin.module(attach-target{sms=2},fuse,tile,schedule,select-kernels)' --pass-statistics
// The products' paths by default: the one with transpose_b (weight rows contiguous along K,
// bf16, K a multiple of 8, its input in the arena) takes a warp per row with 16-byte
// loads (`row`); the one without streams columns, its lanes an element each (`lanes`).
// The rms_norm (in the second's group, its result the first's input) stages its weight.
func.func @f(%x: tensor<256xf32>, %g: tensor<256xbf16> {mkc.weight = "g"}, %wt: tensor<64x256xbf16> {mkc.weight = "wt"}, %wn: tensor<256x64xbf16> {mkc.weight = "wn"}) -> (tensor<64xf32>, tensor<64xf32>) {
  %h = "tg.rms_norm"(%x, %g) {axis = 0 : i64, epsilon = 1.0e-6 : f64} : (tensor<256xf32>, tensor<256xbf16>) -> tensor<256xf32>
  %a = "tg.matmul"(%h, %wt) {transpose_b = true} : (tensor<256xf32>, tensor<64x256xbf16>) -> tensor<64xf32>
  %b = "tg.matmul"(%h, %wn) : (tensor<256xf32>, tensor<256x64xbf16>) -> tensor<64xf32>
  return %a, %b : tensor<64xf32>, tensor<64xf32>
}

// CHECK-LABEL: "kernel.plan"
// CHECK-NEXT:  "kernel.code"
// CHECK-NEXT:    name = "tg.rms_norm", result = #kernel.place<direct>, stats = "cta", temps = [#kernel.place<shared, 0, 16>, #kernel.place<shared, 16, 64>, #kernel.place<shared, 80, 512>], weight = "staged"}
// CHECK-NEXT:  }) {direct = true, id = 0 : i64, kind = "lm_head", scratch = 0 : i64, smem = 592 : i64, task = 0 : i64}
// CHECK-NEXT:  "kernel.code"
// CHECK-NEXT:    {index = 1 : i64, matvec = "lanes", name = "tg.matmul", result = #kernel.place<direct>}
// CHECK-NEXT:  }) {direct = true, id = 1 : i64,
// CHECK-NEXT:  "kernel.code"
// CHECK-NEXT:    {index = 0 : i64, matvec = "row", name = "tg.matmul", preload = 1 : i64, result = #kernel.place<direct>, unroll = 1 : i64}
// CHECK-NEXT:  }) {direct = true, id = 2 : i64,
// The defaults.
// CHECK-NEXT:  }) {events = "release-acquire", extents = "constant", inputs = "before-wait", poll_sleep = 32 : i64, prefetch = "next", prefetch_bytes = 65536 : i64, registers = 128 : i64, ring_slot_bytes = 32768 : i64, ring_slots = 0 : i64, smem_scratch = 98304 : i64, thread_number = "loaded", threads = 512 : i64, waits = "parallel", weight_loads = "evict-first"}
// CHECK:       'select-kernels'
// CHECK-NEXT:  (codes) 3 :
// CHECK-NEXT:  (global-scratch-codes) 0 :
