// RUN: --pass-pipeline='builtin.module(func.func(canonicalise))'
func.func @f() {
  return
}
