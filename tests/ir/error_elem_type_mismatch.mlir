// RUN:
func.func @f(%a: tensor<2xf32>, %b: tensor<2xbf16>) -> tensor<2xf32> {
  %0 = "tg.sub"(%a, %b) : (tensor<2xf32>, tensor<2xbf16>) -> tensor<2xf32>
  return %0 : tensor<2xf32>
}

// CHECK:      // exit 1
// CHECK-NEXT: error_elem_type_mismatch.mlir:3:8: error: 'tg.sub' op operands have different element types: f32 and bf16
// CHECK-NEXT: %0 = "tg.sub"(%a, %b) : (tensor<2xf32>, tensor<2xbf16>) -> tensor<2xf32>
// CHECK-NEXT: ^
