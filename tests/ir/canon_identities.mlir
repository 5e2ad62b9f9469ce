// RUN: --pass-pipeline='builtin.module(canonicalize)' --pass-statistics
func.func @f(%x: tensor<4xf32>) -> tensor<4xf32> {
  %zero = "tg.constant"() {value = dense<0.0> : tensor<4xf32>} : () -> tensor<4xf32>
  %one = "tg.constant"() {value = dense<1.0> : tensor<f32>} : () -> tensor<f32>
  %a = "tg.add"(%x, %zero) : (tensor<4xf32>, tensor<4xf32>) -> tensor<4xf32>
  %b = "tg.mul"(%one, %a) : (tensor<f32>, tensor<4xf32>) -> tensor<4xf32>
  %c = "tg.div"(%b, %one) : (tensor<4xf32>, tensor<f32>) -> tensor<4xf32>
  %d = "tg.sub"(%c, %zero) : (tensor<4xf32>, tensor<4xf32>) -> tensor<4xf32>
  %e = "tg.neg"(%d) : (tensor<4xf32>) -> tensor<4xf32>
  %g = "tg.neg"(%e) : (tensor<4xf32>) -> tensor<4xf32>
  return %g : tensor<4xf32>
}

// x + 0, 1 * x, x / 1, x - 0 and -(-x) are all x.
// CHECK:      func.func @f(%arg0: tensor<4xf32>) -> tensor<4xf32> {
// CHECK-NEXT:   return %arg0 : tensor<4xf32>
// CHECK-NEXT: }
// CHECK:      // ---- log ----
// CHECK:      'canonicalize'
// CHECK-NEXT:   (folded) 0 :
// CHECK-NEXT:   (simplified) 5 :
// CHECK-NEXT:   (reordered) 1 :
// CHECK-NEXT:   (erased) 3 :
