// RUN:
module @model attributes {mkc.level = "tensor", mkc.version = 1 : i64} {
  func.func private @helper(%x: tensor<2xf32>) -> tensor<2xf32> attributes {mkc.note = "kept"} {
    return %x : tensor<2xf32>
  }
}

// A module's name and attributes and a private function's attributes print back.
// CHECK:      module @model attributes {mkc.level = "tensor", mkc.version = 1 : i64} {
// CHECK-NEXT: func.func private @helper(%arg0: tensor<2xf32>) -> tensor<2xf32> attributes {mkc.note = "kept"} {
// CHECK-NEXT: return %arg0 : tensor<2xf32>
// CHECK-NEXT: }
// CHECK-NEXT: }
