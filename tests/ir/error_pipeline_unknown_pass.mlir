// RUN: --pass-pipeline='builtin.module(func.func(canonicalise))'
func.func @f() {
  return
}

// CHECK:      // exit 1
// CHECK-NEXT: pipeline:1:26: error: unknown pass 'canonicalise'; valid passes: attach-target, canonicalize, cse, dce, fuse, int8-activations, raise, schedule, select-kernels, split-argmax, split-attention, split-k, tile
// CHECK-NEXT: builtin.module(func.func(canonicalise))
// CHECK-NEXT: ^
