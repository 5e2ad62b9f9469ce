// RUN: --pass-pipeline='builtin.module(cse'
func.func @f() {
  return
}

// CHECK:      // exit 1
// CHECK-NEXT: pipeline:1:19: error: expected ')' to close 'builtin.module('
// CHECK-NEXT: builtin.module(cse
// CHECK-NEXT: ^
