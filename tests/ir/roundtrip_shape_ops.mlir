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

// Integer arrays print typed (i64).
// CHECK:      module {
// CHECK-NEXT: func.func @shapes(%arg0: tensor<2x3x4xf32>, %arg1: tensor<2x2xi64>) -> (tensor<4x3x2xf32>, tensor<2x6x4xf32>, tensor<2x1x4xf32>, tensor<2x2x4xf32>, tensor<2x2x3x4xf32>, tensor<2x3x2xf32>, tensor<5xi64>) {
// CHECK-NEXT: %0 = "tg.transpose"(%arg0) {perm = [2 : i64, 1 : i64, 0 : i64]} : (tensor<2x3x4xf32>) -> tensor<4x3x2xf32>
// CHECK-NEXT: %1 = "tg.concat"(%arg0, %arg0) {axis = 1 : i64} : (tensor<2x3x4xf32>, tensor<2x3x4xf32>) -> tensor<2x6x4xf32>
// CHECK-NEXT: %2:2 = "tg.split"(%arg0) {axis = 1 : i64, sizes = [1 : i64, 2 : i64]} : (tensor<2x3x4xf32>) -> (tensor<2x1x4xf32>, tensor<2x2x4xf32>)
// CHECK-NEXT: %3 = "tg.gather"(%arg0, %arg1) {axis = 0 : i64} : (tensor<2x3x4xf32>, tensor<2x2xi64>) -> tensor<2x2x3x4xf32>
// CHECK-NEXT: %4 = "tg.slice"(%arg0) {offsets = [0 : i64, 2 : i64, 3 : i64], sizes = [2 : i64, 3 : i64, 2 : i64], strides = [1 : i64, -1 : i64, -2 : i64]} : (tensor<2x3x4xf32>) -> tensor<2x3x2xf32>
// CHECK-NEXT: %5 = "tg.iota"() {start = 0 : i64, step = 3 : i64} : () -> tensor<5xi64>
// CHECK-NEXT: return %0, %1, %2#0, %2#1, %3, %4, %5 : tensor<4x3x2xf32>, tensor<2x6x4xf32>, tensor<2x1x4xf32>, tensor<2x2x4xf32>, tensor<2x2x3x4xf32>, tensor<2x3x2xf32>, tensor<5xi64>
// CHECK-NEXT: }
// CHECK-NEXT: }
