// RUN:
func.func @f(%a: tensor<2xf32>) -> tensor<2xbf16> {
  return %a : tensor<2xf32>
}

// CHECK:      // exit 1
// CHECK-NEXT: error_return_types.mlir:3:3: error: 'func.return' op operand #0 has type tensor<2xf32>, but the function returns tensor<2xbf16>
// CHECK-NEXT: return %a : tensor<2xf32>
// CHECK-NEXT: ^
