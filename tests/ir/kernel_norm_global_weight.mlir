// RUN: --pass-pipeline='builtin.module(attach-target{sms=2},fuse,tile,schedule,select-kernels{staged-norm-weights=false})'
// staged-norm-weights=false: the rms_norm reads its weight from global memory (`global`),
// without the shared copy (one temporary and 512 bytes of shared memory fewer).
func.func @f(%x: tensor<256xf32>, %g: tensor<256xbf16> {mkc.weight = "g"}, %wt: tensor<64x256xbf16> {mkc.weight = "wt"}, %wn: tensor<256x64xbf16> {mkc.weight = "wn"}) -> (tensor<64xf32>, tensor<64xf32>) {
  %h = "tg.rms_norm"(%x, %g) {axis = 0 : i64, epsilon = 1.0e-6 : f64} : (tensor<256xf32>, tensor<256xbf16>) -> tensor<256xf32>
  %a = "tg.matmul"(%h, %wt) {transpose_b = true} : (tensor<256xf32>, tensor<64x256xbf16>) -> tensor<64xf32>
  %b = "tg.matmul"(%h, %wn) : (tensor<256xf32>, tensor<256x64xbf16>) -> tensor<64xf32>
  return %a, %b : tensor<64xf32>, tensor<64xf32>
}

// CHECK-LABEL: "kernel.plan"
// CHECK-NEXT:  "kernel.code"
// CHECK-NEXT:    name = "tg.rms_norm", result = #kernel.place<direct>, stats = "cta", temps = [#kernel.place<shared, 0, 16>, #kernel.place<shared, 16, 64>], weight = "global"}
// CHECK-NEXT:  }) {direct = true, id = 0 : i64, kind = "lm_head", scratch = 0 : i64, smem = 80 : i64,
// CHECK-NOT:   "staged"
