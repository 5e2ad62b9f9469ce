// RUN:
func.func @f(%a: tensor<2xf32>) -> tensor<2xf32> {
  %0 = "tg.neg"(%a) : (tensor<2xf32>) -> tensor<2xf32>
}

// CHECK:      // exit 1
// CHECK-NEXT: error_missing_return.mlir:2:1: error: 'func.func' op body must end with 'func.return'
// CHECK-NEXT: func.func @f(%a: tensor<2xf32>) -> tensor<2xf32> {
// CHECK-NEXT: ^
