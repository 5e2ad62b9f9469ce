// RUN: --allow-unregistered-dialect
func.func @"weird name"() {
  "demo.s"() {a = "tab\there", b = "quote\" and backslash\\", c = "newline\n", d = "\E2\9C\93 unicode", "quoted key" = 1 : i64} : () -> ()
  return
}

// String escapes and a quoted symbol name print back.
// CHECK:      module {
// CHECK-NEXT: func.func @"weird name"() {
// CHECK-NEXT: "demo.s"() {a = "tab\there", b = "quote\" and backslash\\", c = "newline\n", d = "\E2\9C\93 unicode", "quoted key" = 1 : i64} : () -> ()
// CHECK-NEXT: return
// CHECK-NEXT: }
// CHECK-NEXT: }
