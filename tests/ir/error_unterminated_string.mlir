// RUN: --allow-unregistered-dialect
func.func @f() {
  "demo.s"() {a = "no end} : () -> ()
  return
}

// CHECK:      // exit 1
// CHECK-NEXT: error_unterminated_string.mlir:3:19: error: unterminated string
// CHECK-NEXT: "demo.s"() {a = "no end} : () -> ()
// CHECK-NEXT: ^
