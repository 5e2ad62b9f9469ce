// RUN:
func.func @f(%a: tensor<2xf32>) -> tensor<2xf32> {
  %0 = "tg.add"(%a) : (tensor<2xf32>) -> tensor<2xf32>
  return %0 : tensor<2xf32>
}

// CHECK:      // exit 1
// CHECK-NEXT: error_operand_count.mlir:3:8: error: 'tg.add' op expects 2 operands, but has 1
// CHECK-NEXT: %0 = "tg.add"(%a) : (tensor<2xf32>) -> tensor<2xf32>
// CHECK-NEXT: ^
