// RUN:
func.func @f() -> tensor<2xf32> {
  %0 = "tg.constant"() : () -> tensor<2xf32>
  return %0 : tensor<2xf32>
}

// CHECK:      // exit 1
// CHECK-NEXT: error_missing_attr.mlir:3:8: error: 'tg.constant' op requires attribute 'value'
// CHECK-NEXT: %0 = "tg.constant"() : () -> tensor<2xf32>
// CHECK-NEXT: ^
