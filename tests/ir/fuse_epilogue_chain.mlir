// RUN: --pass-pipeline='builtin.module(fuse)' --pass-statistics
// A chain of light ops after a matmul (bias, sigmoid, neg, a product that reads the bias
// sum again) runs on the matmul's output tiles: one group. The next matmul reads the
// whole chain's output, so it starts a group of its own.
func.func @f(%x: tensor<64xf32>, %w: tensor<96x64xbf16> {mkc.weight = "w"}, %b: tensor<96xf32>, %w2: tensor<64x96xbf16> {mkc.weight = "w2"}) -> tensor<64xf32> {
  %m = "tg.matmul"(%x, %w) {transpose_b = true} : (tensor<64xf32>, tensor<96x64xbf16>) -> tensor<96xf32>
  %a = "tg.add"(%m, %b) : (tensor<96xf32>, tensor<96xf32>) -> tensor<96xf32>
  %s = "tg.sigmoid"(%a) : (tensor<96xf32>) -> tensor<96xf32>
  %n = "tg.neg"(%s) : (tensor<96xf32>) -> tensor<96xf32>
  %c = "tg.mul"(%n, %a) : (tensor<96xf32>, tensor<96xf32>) -> tensor<96xf32>
  %d = "tg.matmul"(%c, %w2) {transpose_b = true} : (tensor<96xf32>, tensor<64x96xbf16>) -> tensor<64xf32>
  return %d : tensor<64xf32>
}

// CHECK-LABEL: func.func @f
// CHECK:       %0 = "fused.group"(%arg0, %arg1, %arg2) ({
// CHECK-NEXT:  ^bb0
// CHECK-NEXT:    %[[M:[0-9]+]] = "tg.matmul"
// CHECK-NEXT:    %[[A:[0-9]+]] = "tg.add"(%{{arg[0-9]+}}, %[[M]])
// CHECK-NEXT:    %[[S:[0-9]+]] = "tg.sigmoid"(%[[A]])
// CHECK-NEXT:    %[[N:[0-9]+]] = "tg.neg"(%[[S]])
// CHECK-NEXT:    %[[C:[0-9]+]] = "tg.mul"(%[[A]], %[[N]])
// CHECK-NEXT:    "fused.yield"(%[[C]])
// CHECK-NEXT:  }) {kind = "proj_residual"}
// CHECK-NEXT:  %6 = "fused.group"(%0, %arg3) ({
// CHECK-NEXT:  ^bb0
// CHECK-NEXT:    "tg.matmul"
// CHECK-NEXT:    "fused.yield"
// CHECK-NEXT:  }) {kind = "lm_head"}
// CHECK:       (fused-groups) 2 :
// CHECK:       (fusion:epilogue-chain) 3
// CHECK-NEXT:  (fusion:matmul-epilogue) 1
