// RUN: --pass-pipeline='builtin.module(canonicalize{max-iterations=lots})'
func.func @f() {
  return
}
