// RUN:
func.func @shapes(%x: tensor<2x3x4xf32>, %i: tensor<2x2xi64>) -> (tensor<4x3x2xf32>, tensor<2x6x4xf32>, tensor<2x1x4xf32>, tensor<2x2x4xf32>, tensor<2x2x3x4xf32>, tensor<2x3x2xf32>, tensor<5xi64>) {
  %t = "tg.transpose"(%x) {perm = [2, 1, 0]} : (tensor<2x3x4xf32>) -> tensor<4x3x2xf32>
  %c = "tg.concat"(%x, %x) {axis = 1 : i64} : (tensor<2x3x4xf32>, tensor<2x3x4xf32>) -> tensor<2x6x4xf32>
  %s:2 = "tg.split"(%x) {axis = 1 : i64, sizes = [1, 2]} : (tensor<2x3x4xf32>) -> (tensor<2x1x4xf32>, tensor<2x2x4xf32>)
  %g = "tg.gather"(%x, %i) {axis = 0 : i64} : (tensor<2x3x4xf32>, tensor<2x2xi64>) -> tensor<2x2x3x4xf32>
  %sl = "tg.slice"(%x) {offsets = [0, 2, 3], sizes = [2, 3, 2], strides = [1, -1, -2]} : (tensor<2x3x4xf32>) -> tensor<2x3x2xf32>
  %r = "tg.iota"() {start = 0 : i64, step = 3 : i64} : () -> tensor<5xi64>
  return %t, %c, %s#0, %s#1, %g, %sl, %r : tensor<4x3x2xf32>, tensor<2x6x4xf32>, tensor<2x1x4xf32>, tensor<2x2x4xf32>, tensor<2x2x3x4xf32>, tensor<2x3x2xf32>, tensor<5xi64>
}
