// RUN: --pass-pipeline='builtin.module(attach-target{sms=8},split-argmax{parts=7})'
// Parts must cut the vector into equal runs: the error names the op's place.
func.func @f(%l: tensor<2048xf32>) -> tensor<i64> {
  %t = "tg.argmax"(%l) {axis = 0 : i64, keepdims = false} : (tensor<2048xf32>) -> tensor<i64>
  return %t : tensor<i64>
}

// CHECK:      // exit 1
// CHECK-NEXT: {{.*}}error_split_argmax_parts.mlir:4:{{[0-9]+}}: error: split-argmax: 7 parts do not cut 2048 elements into equal runs
