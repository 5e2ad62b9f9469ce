// RUN: --allow-unregistered-dialect
module {
  func.func @split(%x: tensor<8xbf16>) -> (tensor<4xbf16>, tensor<4xbf16>) {
    %parts:2 = "demo.split"(%x) {axis = 0 : i64} : (tensor<8xbf16>) -> (tensor<4xbf16>, tensor<4xbf16>)
    %a, %b:2 = "demo.three"(%parts#1) : (tensor<4xbf16>) -> (tensor<4xbf16>, tensor<4xbf16>, tensor<4xbf16>)
    return %parts#0, %b#1 : tensor<4xbf16>, tensor<4xbf16>
  }
}

// Results bound in groups (%a, %b:2) print as one %N:3.
// CHECK:      module {
// CHECK-NEXT: func.func @split(%arg0: tensor<8xbf16>) -> (tensor<4xbf16>, tensor<4xbf16>) {
// CHECK-NEXT: %0:2 = "demo.split"(%arg0) {axis = 0 : i64} : (tensor<8xbf16>) -> (tensor<4xbf16>, tensor<4xbf16>)
// CHECK-NEXT: %1:3 = "demo.three"(%0#1) : (tensor<4xbf16>) -> (tensor<4xbf16>, tensor<4xbf16>, tensor<4xbf16>)
// CHECK-NEXT: return %0#0, %1#2 : tensor<4xbf16>, tensor<4xbf16>
// CHECK-NEXT: }
// CHECK-NEXT: }
