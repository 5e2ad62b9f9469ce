// RUN: --pass-pipeline='builtin.module(attach-target{sms=8},fuse,tile{min-tile-bytes=1024},schedule,select-kernels{smem-scratch=1024})'
// Each task takes 2 of the 16 positions, and 1 KiB of shared scratch holds none of its
// values: the product's result lives in a window of the task's box ([1, 2, 256] of
// [1, 16, 256]), strided as that box. A reshape of it is then not a view of row-major
// elements: it copies, into a window of its own, so the norm reads the rows it needs.
func.func @f(%x: tensor<1x16x256xf32>, %w: tensor<256x256xbf16> {mkc.weight = "w"}, %wn: tensor<64xbf16> {mkc.weight = "n"}) -> tensor<1x4x16x64xf32> {
  %m = "tg.matmul"(%x, %w) : (tensor<1x16x256xf32>, tensor<256x256xbf16>) -> tensor<1x16x256xf32>
  %r = "tg.reshape"(%m) : (tensor<1x16x256xf32>) -> tensor<1x16x4x64xf32>
  %n = "tg.rms_norm"(%r, %wn) {axis = 3 : i64, epsilon = 1.0e-6 : f64} : (tensor<1x16x4x64xf32>, tensor<64xbf16>) -> tensor<1x16x4x64xf32>
  %t = "tg.transpose"(%n) {perm = [0, 2, 1, 3]} : (tensor<1x16x4x64xf32>) -> tensor<1x4x16x64xf32>
  return %t : tensor<1x4x16x64xf32>
}

// CHECK-LABEL: "kernel.plan"
// CHECK:       name = "tg.matmul", result = #kernel.place<global, 0, 2048, window>
// CHECK-NEXT:  {index = 1 : i64, name = "tg.reshape", result = #kernel.place<global, 2048, 2048, window>}
// CHECK-NOT:   #kernel.place<view>
