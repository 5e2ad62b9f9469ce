// RUN:
// A slice whose last element's index overflows 64 bits is an error, not a wrap (found by
// the pass-pipeline fuzzer: it panicked in debug builds).
func.func @f(%x: tensor<4xf32>) -> tensor<2xf32> {
  %0 = "tg.slice"(%x) {offsets = [1], sizes = [2], strides = [9223372036854775807]} : (tensor<4xf32>) -> tensor<2xf32>
  return %0 : tensor<2xf32>
}

// CHECK:      // exit 1
// CHECK-NEXT: error_slice_overflow.mlir:5:8: error: 'tg.slice' op dimension 0: offset 1, size 2 and stride 9223372036854775807 overflow 64 bits
