// RUN:
func.func @f(%x: tensor<4xf32>) -> tensor<3xf32> {
  %0 = "tg.slice"(%x) {offsets = [2], sizes = [3], strides = [1]} : (tensor<4xf32>) -> tensor<3xf32>
  return %0 : tensor<3xf32>
}
