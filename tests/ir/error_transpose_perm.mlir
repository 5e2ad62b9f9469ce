// RUN:
func.func @f(%x: tensor<2x3xf32>) -> tensor<3x2xf32> {
  %0 = "tg.transpose"(%x) {perm = [1, 1]} : (tensor<2x3xf32>) -> tensor<3x2xf32>
  return %0 : tensor<3x2xf32>
}

// CHECK:      // exit 1
// CHECK-NEXT: error_transpose_perm.mlir:3:8: error: 'tg.transpose' op perm [1, 1] is not a permutation
// CHECK-NEXT: %0 = "tg.transpose"(%x) {perm = [1, 1]} : (tensor<2x3xf32>) -> tensor<3x2xf32>
// CHECK-NEXT: ^
