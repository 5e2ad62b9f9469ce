// RUN:
func.func @f(%x: tensor<4xf32>) -> tensor<3xf32> {
  %0 = "tg.slice"(%x) {offsets = [2], sizes = [3], strides = [1]} : (tensor<4xf32>) -> tensor<3xf32>
  return %0 : tensor<3xf32>
}

// CHECK:      // exit 1
// CHECK-NEXT: error_slice_out_of_range.mlir:3:8: error: 'tg.slice' op dimension 0: elements 2..=4 (stride 1) are outside 0..4
// CHECK-NEXT: %0 = "tg.slice"(%x) {offsets = [2], sizes = [3], strides = [1]} : (tensor<4xf32>) -> tensor<3xf32>
// CHECK-NEXT: ^
