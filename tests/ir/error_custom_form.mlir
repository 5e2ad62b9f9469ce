// RUN:
func.func @f(%a: tensor<2xf32>) -> tensor<2xf32> {
  %0 = tg.add %a, %a : tensor<2xf32>
  return %0 : tensor<2xf32>
}

// CHECK:      // exit 1
// CHECK-NEXT: error_custom_form.mlir:3:8: error: custom assembly form of 'tg.add' is not supported; write it in generic form: "tg.add"(...) : (...) -> ...
// CHECK-NEXT: %0 = tg.add %a, %a : tensor<2xf32>
// CHECK-NEXT: ^
