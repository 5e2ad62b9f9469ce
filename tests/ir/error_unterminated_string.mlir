// RUN: --allow-unregistered-dialect
func.func @f() {
  "demo.s"() {a = "no end} : () -> ()
  return
}
