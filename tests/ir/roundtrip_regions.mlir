// RUN: --allow-unregistered-dialect
func.func @group(%x: tensor<4xf32>, %w: tensor<4xf32>) -> tensor<4xf32> {
  %r = "demo.group"(%x) ({
  ^bb0(%in: tensor<4xf32>):
    %m = "tg.mul"(%in, %w) : (tensor<4xf32>, tensor<4xf32>) -> tensor<4xf32>
    "demo.yield"(%m) : (tensor<4xf32>) -> ()
  }, {
    "demo.yield"() : () -> ()
  }) : (tensor<4xf32>) -> tensor<4xf32>
  return %r : tensor<4xf32>
}

// An op with two regions and a block argument prints back.
// CHECK:      module {
// CHECK-NEXT: func.func @group(%arg0: tensor<4xf32>, %arg1: tensor<4xf32>) -> tensor<4xf32> {
// CHECK-NEXT: %0 = "demo.group"(%arg0) ({
// CHECK-NEXT: ^bb0(%arg2: tensor<4xf32>):
// CHECK-NEXT: %1 = "tg.mul"(%arg2, %arg1) : (tensor<4xf32>, tensor<4xf32>) -> tensor<4xf32>
// CHECK-NEXT: "demo.yield"(%1) : (tensor<4xf32>) -> ()
// CHECK-NEXT: }, {
// CHECK-NEXT: "demo.yield"() : () -> ()
// CHECK-NEXT: }) : (tensor<4xf32>) -> tensor<4xf32>
// CHECK-NEXT: return %0 : tensor<4xf32>
// CHECK-NEXT: }
// CHECK-NEXT: }
