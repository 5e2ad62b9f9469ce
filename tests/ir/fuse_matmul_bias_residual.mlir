// RUN: --pass-pipeline='builtin.module(fuse)' --pass-statistics
// A projection with a bias (a weight cast to f32) and a residual add: one proj_residual
// group. The bias cast reads only an input, so it joins as a prologue; both adds are
// epilogues on the matmul's output tiles.
func.func @f(%x: tensor<64xf32>, %w: tensor<64x64xbf16> {mkc.weight = "w"}, %b: tensor<64xbf16> {mkc.weight = "b"}) -> tensor<64xf32> {
  %m = "tg.matmul"(%x, %w) {transpose_b = true} : (tensor<64xf32>, tensor<64x64xbf16>) -> tensor<64xf32>
  %bf = "tg.cast"(%b) : (tensor<64xbf16>) -> tensor<64xf32>
  %a = "tg.add"(%m, %bf) : (tensor<64xf32>, tensor<64xf32>) -> tensor<64xf32>
  %y = "tg.add"(%x, %a) : (tensor<64xf32>, tensor<64xf32>) -> tensor<64xf32>
  return %y : tensor<64xf32>
}

// CHECK-LABEL: func.func @f
// CHECK:       %0 = "fused.group"(%arg2, %arg0, %arg1) ({
// CHECK-NEXT:  ^bb0(%[[B:arg[0-9]+]]: tensor<64xbf16>, %[[X:arg[0-9]+]]: tensor<64xf32>, %[[W:arg[0-9]+]]: tensor<64x64xbf16>):
// CHECK-NEXT:    %[[BF:[0-9]+]] = "tg.cast"(%[[B]])
// CHECK-NEXT:    %[[M:[0-9]+]] = "tg.matmul"(%[[X]], %[[W]]) {transpose_b = true}
// CHECK-NEXT:    %[[A:[0-9]+]] = "tg.add"(%[[M]], %[[BF]])
// CHECK-NEXT:    %[[Y:[0-9]+]] = "tg.add"(%[[X]], %[[A]])
// CHECK-NEXT:    "fused.yield"(%[[Y]])
// CHECK-NEXT:  }) {kind = "proj_residual"}
// CHECK-NEXT:  return %0
// CHECK:       (fused-groups) 1 :
// CHECK:       (fusion:epilogue-chain) 1
// CHECK-NEXT:  (fusion:matmul-epilogue) 1
// CHECK-NEXT:  (fusion:weight-prologue) 1
