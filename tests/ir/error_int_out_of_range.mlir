// RUN:
func.func @f() {
  %0 = "tg.constant"() {value = dense<[1, 300]> : tensor<2xi8>} : () -> tensor<2xi8>
  return
}

// CHECK:      // exit 1
// CHECK-NEXT: error_int_out_of_range.mlir:3:33: error: element is not a valid i8
// CHECK-NEXT: %0 = "tg.constant"() {value = dense<[1, 300]> : tensor<2xi8>} : () -> tensor<2xi8>
// CHECK-NEXT: ^
