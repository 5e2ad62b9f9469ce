// RUN:
// Comments and locations are accepted; locations are not printed.
module {
  // a function
  func.func @f(%x: tensor<2xf32>) -> tensor<2xf32> {
    %0 = "tg.exp"(%x) : (tensor<2xf32>) -> tensor<2xf32> loc("model.py":12:5) // trailing
    return %0 : tensor<2xf32> loc(unknown)
  } loc(fused["a", "b"])
}

// CHECK:      module {
// CHECK-NEXT: func.func @f(%arg0: tensor<2xf32>) -> tensor<2xf32> {
// CHECK-NEXT: %0 = "tg.exp"(%arg0) : (tensor<2xf32>) -> tensor<2xf32>
// CHECK-NEXT: return %0 : tensor<2xf32>
// CHECK-NEXT: }
// CHECK-NEXT: }
