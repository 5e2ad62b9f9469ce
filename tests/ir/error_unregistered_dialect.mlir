// RUN:
func.func @f(%a: tensor<2xf32>) -> tensor<2xf32> {
  %0 = "mystery.op"(%a) : (tensor<2xf32>) -> tensor<2xf32>
  return %0 : tensor<2xf32>
}

// CHECK:      // exit 1
// CHECK-NEXT: error_unregistered_dialect.mlir:3:8: error: 'mystery.op' op belongs to unregistered dialect 'mystery' (pass --allow-unregistered-dialect to accept it)
// CHECK-NEXT: %0 = "mystery.op"(%a) : (tensor<2xf32>) -> tensor<2xf32>
// CHECK-NEXT: ^
