// RUN: --pass-pipeline='builtin.module(raise,canonicalize)'
func.func @f(%x: tensor<1x2x3x8xf32>, %cos: tensor<1x1x3x8xf32>, %sin: tensor<1x1x3x8xf32>) -> tensor<1x2x3x8xf32> {
  %lo = "tg.slice"(%x) {offsets = [0, 0, 0, 0], sizes = [1, 2, 3, 4], strides = [1, 1, 1, 1]} : (tensor<1x2x3x8xf32>) -> tensor<1x2x3x4xf32>
  %hi = "tg.slice"(%x) {offsets = [0, 0, 0, 4], sizes = [1, 2, 3, 4], strides = [1, 1, 1, 1]} : (tensor<1x2x3x8xf32>) -> tensor<1x2x3x4xf32>
  %nhi = "tg.neg"(%hi) : (tensor<1x2x3x4xf32>) -> tensor<1x2x3x4xf32>
  %rot = "tg.concat"(%nhi, %lo) {axis = 3 : i64} : (tensor<1x2x3x4xf32>, tensor<1x2x3x4xf32>) -> tensor<1x2x3x8xf32>
  %a = "tg.mul"(%x, %cos) : (tensor<1x2x3x8xf32>, tensor<1x1x3x8xf32>) -> tensor<1x2x3x8xf32>
  %b = "tg.mul"(%rot, %sin) : (tensor<1x2x3x8xf32>, tensor<1x1x3x8xf32>) -> tensor<1x2x3x8xf32>
  %y = "tg.add"(%a, %b) : (tensor<1x2x3x8xf32>, tensor<1x2x3x8xf32>) -> tensor<1x2x3x8xf32>
  return %y : tensor<1x2x3x8xf32>
}

// x * cos + concat(-hi, lo) * sin is rope over the full width.
// CHECK-LABEL: func.func @f
// CHECK-NEXT:  %0 = "tg.rope"(%arg0, %arg1, %arg2) {full_width = true} : (tensor<1x2x3x8xf32>, tensor<1x1x3x8xf32>, tensor<1x1x3x8xf32>) -> tensor<1x2x3x8xf32>
// CHECK-NEXT:  return %0
