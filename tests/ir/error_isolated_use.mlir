// RUN:
module {
  %c = "tg.constant"() {value = dense<1.0> : tensor<2xf32>} : () -> tensor<2xf32>
  func.func @f() -> tensor<2xf32> {
    return %c : tensor<2xf32>
  }
}

// CHECK:      // exit 1
// CHECK-NEXT: error_isolated_use.mlir:5:12: error: use of undeclared SSA value name '%c'
// CHECK-NEXT: return %c : tensor<2xf32>
// CHECK-NEXT: ^
