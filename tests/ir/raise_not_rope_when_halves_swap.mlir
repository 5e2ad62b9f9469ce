// RUN: --pass-pipeline='builtin.module(raise,canonicalize)'
// The negated half is the low one: that is not rotate-half, and must stay as written.
func.func @f(%x: tensor<2x8xf32>, %cos: tensor<2x8xf32>, %sin: tensor<2x8xf32>) -> tensor<2x8xf32> {
  %lo = "tg.slice"(%x) {offsets = [0, 0], sizes = [2, 4], strides = [1, 1]} : (tensor<2x8xf32>) -> tensor<2x4xf32>
  %hi = "tg.slice"(%x) {offsets = [0, 4], sizes = [2, 4], strides = [1, 1]} : (tensor<2x8xf32>) -> tensor<2x4xf32>
  %nlo = "tg.neg"(%lo) : (tensor<2x4xf32>) -> tensor<2x4xf32>
  %rot = "tg.concat"(%nlo, %hi) {axis = 1 : i64} : (tensor<2x4xf32>, tensor<2x4xf32>) -> tensor<2x8xf32>
  %a = "tg.mul"(%x, %cos) : (tensor<2x8xf32>, tensor<2x8xf32>) -> tensor<2x8xf32>
  %b = "tg.mul"(%rot, %sin) : (tensor<2x8xf32>, tensor<2x8xf32>) -> tensor<2x8xf32>
  %y = "tg.add"(%a, %b) : (tensor<2x8xf32>, tensor<2x8xf32>) -> tensor<2x8xf32>
  return %y : tensor<2x8xf32>
}

// CHECK-LABEL: func.func @f
// CHECK-NOT:   "tg.rope"
// CHECK:       %[[HI:.*]] = "tg.slice"(%arg0) {offsets = [0 : i64, 4 : i64]
// CHECK-NEXT:  %[[LO:.*]] = "tg.slice"(%arg0) {offsets = [0 : i64, 0 : i64]
// CHECK-NEXT:  %[[N:.*]] = "tg.neg"(%[[LO]])
// CHECK-NEXT:  "tg.concat"(%[[N]], %[[HI]]) {axis = 1 : i64}
// CHECK-NOT:   "tg.rope"
