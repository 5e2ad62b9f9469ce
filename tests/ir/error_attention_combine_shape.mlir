// RUN:
// A combine's result is [heads, dim] of its parts [parts, heads, dim + 2].
func.func @f(%p: tensor<4x6x10xf32>) -> tensor<6x10xf32> {
  %0 = "tg.attention_combine"(%p) : (tensor<4x6x10xf32>) -> tensor<6x10xf32>
  return %0 : tensor<6x10xf32>
}

// CHECK:      // exit 1
// CHECK-NEXT: error_attention_combine_shape.mlir:4:8: error: 'tg.attention_combine' op the result must be a float [6, 8], not tensor<6x10xf32>
// CHECK-NEXT: %0 = "tg.attention_combine"(%p) : (tensor<4x6x10xf32>) -> tensor<6x10xf32>
// CHECK-NEXT: ^
