// RUN: --allow-unregistered-dialect
func.func @"weird name"() {
  "demo.s"() {a = "tab\there", b = "quote\" and backslash\\", c = "newline\n", d = "\E2\9C\93 unicode", "quoted key" = 1 : i64} : () -> ()
  return
}
