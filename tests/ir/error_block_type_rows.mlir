// RUN:
// A block-quantized tensor's rows are whole blocks (32 values for q8_0).
func.func @f(%w: tensor<4x48x!mkc.q8_0> {mkc.weight = "w"}, %x: tensor<48xf32>) -> tensor<4xf32> {
  %0 = "tg.matmul"(%x, %w) {transpose_b = true} : (tensor<48xf32>, tensor<4x48x!mkc.q8_0>) -> tensor<4xf32>
  return %0 : tensor<4xf32>
}

// CHECK:      // exit 1
// CHECK-NEXT: error_block_type_rows.mlir:3:1: error: 'func.func' op argument #0:
// CHECK-SAME: tensor<4x48x!mkc.q8_0>: a q8_0 tensor's rows (its last dimension) must be whole blocks of 32 values
