// RUN:
func.func @f(%x: tensor<2xf32>) -> tensor<2xf32> {
  %0 = "tg.add"(%1, %x) : (tensor<2xf32>, tensor<2xf32>) -> tensor<2xf32>
  %1 = "tg.neg"(%x) : (tensor<2xf32>) -> tensor<2xf32>
  return %0 : tensor<2xf32>
}

// CHECK:      // exit 1
// CHECK-NEXT: error_dominance.mlir:3:8: error: 'tg.add' op operand #0 does not dominate this use
// CHECK-NEXT: %0 = "tg.add"(%1, %x) : (tensor<2xf32>, tensor<2xf32>) -> tensor<2xf32>
// CHECK-NEXT: ^
// CHECK-NEXT: error_dominance.mlir:4:8: note: operand defined here
// CHECK-NEXT: %1 = "tg.neg"(%x) : (tensor<2xf32>) -> tensor<2xf32>
// CHECK-NEXT: ^
