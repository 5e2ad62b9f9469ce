// RUN:
func.func @f(%x: tensor<2xf32>) -> tensor<2xf32> {
  %0 = "tg.add"(%x, %y) : (tensor<2xf32>, tensor<2xf32>) -> tensor<2xf32>
  return %0 : tensor<2xf32>
}

// CHECK:      // exit 1
// CHECK-NEXT: error_undeclared_value.mlir:3:21: error: use of undeclared SSA value name '%y'
// CHECK-NEXT: %0 = "tg.add"(%x, %y) : (tensor<2xf32>, tensor<2xf32>) -> tensor<2xf32>
// CHECK-NEXT: ^
