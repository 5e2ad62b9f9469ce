// RUN:
module @model attributes {mkc.level = "tensor", mkc.version = 1 : i64} {
  func.func private @helper(%x: tensor<2xf32>) -> tensor<2xf32> attributes {mkc.note = "kept"} {
    return %x : tensor<2xf32>
  }
}
