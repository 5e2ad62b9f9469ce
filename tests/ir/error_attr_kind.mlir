// RUN:
func.func @f() -> tensor<2xf32> {
  %0 = "tg.constant"() {value = "not a tensor"} : () -> tensor<2xf32>
  return %0 : tensor<2xf32>
}

// CHECK:      // exit 1
// CHECK-NEXT: error_attr_kind.mlir:3:8: error: 'tg.constant' op attribute 'value' must be a dense elements or weight reference, but is a string
// CHECK-NEXT: %0 = "tg.constant"() {value = "not a tensor"} : () -> tensor<2xf32>
// CHECK-NEXT: ^
