// RUN:
func.func @f(%a: tensor<2xi32>) -> tensor<2xi32> {
  %0 = "tg.exp"(%a) : (tensor<2xi32>) -> tensor<2xi32>
  return %0 : tensor<2xi32>
}

// CHECK:      // exit 1
// CHECK-NEXT: error_float_only_op.mlir:3:8: error: 'tg.exp' op requires a float tensor, but the operand is tensor<2xi32>
// CHECK-NEXT: %0 = "tg.exp"(%a) : (tensor<2xi32>) -> tensor<2xi32>
// CHECK-NEXT: ^
