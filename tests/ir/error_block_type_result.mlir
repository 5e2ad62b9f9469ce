// RUN:
// Block-quantized types are storage types of weights: no op produces one.
func.func @f(%w: tensor<4x32x!mkc.q4_0> {mkc.weight = "w"}) -> tensor<128x!mkc.q4_0> {
  %0 = "tg.reshape"(%w) : (tensor<4x32x!mkc.q4_0>) -> tensor<128x!mkc.q4_0>
  return %0 : tensor<128x!mkc.q4_0>
}

// CHECK:      // exit 1
// CHECK-NEXT: error_block_type_result.mlir:4:8: error: 'tg.reshape' op result #0 has type tensor<128x!mkc.q4_0>: only weights (arguments) are stored block-quantized; ops read them as reals
