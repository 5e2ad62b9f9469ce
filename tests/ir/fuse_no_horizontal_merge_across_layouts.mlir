// RUN: --pass-pipeline='builtin.module(fuse)' --pass-statistics
// Matmuls reading one input merge into one group (one pass over it, like q/k/v) only when
// they read their weights the same way: the one without transpose_b stays apart.
func.func @f(%x: tensor<64xf32>, %wa: tensor<32x64xbf16> {mkc.weight = "a"}, %wb: tensor<64x32xbf16> {mkc.weight = "b"}, %wc: tensor<32x64xbf16> {mkc.weight = "c"}) -> (tensor<32xf32>, tensor<32xf32>, tensor<32xf32>) {
  %a = "tg.matmul"(%x, %wa) {transpose_b = true} : (tensor<64xf32>, tensor<32x64xbf16>) -> tensor<32xf32>
  %b = "tg.matmul"(%x, %wb) : (tensor<64xf32>, tensor<64x32xbf16>) -> tensor<32xf32>
  %c = "tg.matmul"(%x, %wc) {transpose_b = true} : (tensor<64xf32>, tensor<32x64xbf16>) -> tensor<32xf32>
  return %a, %b, %c : tensor<32xf32>, tensor<32xf32>, tensor<32xf32>
}

// CHECK-LABEL: func.func @f
// CHECK:       %0:2 = "fused.group"(%arg0, %arg3, %arg1) ({
// CHECK-NEXT:  ^bb0
// CHECK-NEXT:    "tg.matmul"({{.*}}) {transpose_b = true}
// CHECK-NEXT:    "tg.matmul"({{.*}}) {transpose_b = true}
// CHECK-NEXT:    "fused.yield"
// CHECK-NEXT:  })
// CHECK-NEXT:  %3 = "fused.group"(%arg0, %arg2) ({
// CHECK-NEXT:  ^bb0
// CHECK-NEXT:    "tg.matmul"(%{{arg[0-9]+}}, %{{arg[0-9]+}}) : (tensor<64xf32>, tensor<64x32xbf16>)
// CHECK-NEXT:    "fused.yield"
// CHECK-NEXT:  })
// CHECK-NEXT:  return %0#1, %3, %0#0
// CHECK:       (fused-groups) 2 :
// CHECK:       (fusion:horizontal-merge) 1
