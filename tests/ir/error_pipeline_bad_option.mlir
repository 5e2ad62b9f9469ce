// RUN: --pass-pipeline='builtin.module(canonicalize{max-iterations=lots})'
func.func @f() {
  return
}

// CHECK:      // exit 1
// CHECK-NEXT: pipeline:1:16: error: pass 'canonicalize': option 'max-iterations': 'lots' is not a valid unsigned
// CHECK-NEXT: builtin.module(canonicalize{max-iterations=lots})
// CHECK-NEXT: ^
