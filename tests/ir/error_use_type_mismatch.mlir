// RUN:
func.func @f(%x: tensor<2xf32>) -> tensor<2xf32> {
  %0 = "tg.neg"(%x) : (tensor<3xf32>) -> tensor<3xf32>
  return %0 : tensor<3xf32>
}

// CHECK:      // exit 1
// CHECK-NEXT: error_use_type_mismatch.mlir:3:17: error: use of value '%x' expects different type than prior uses: 'tensor<3xf32>' vs 'tensor<2xf32>'
// CHECK-NEXT: %0 = "tg.neg"(%x) : (tensor<3xf32>) -> tensor<3xf32>
// CHECK-NEXT: ^
