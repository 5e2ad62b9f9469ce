// RUN:
func.func @f(%a: tensor<2x3xf32>, %b: tensor<3x2xf32>) -> tensor<2x3xf32> {
  %0 = "tg.add"(%a, %b) : (tensor<2x3xf32>, tensor<3x2xf32>) -> tensor<2x3xf32>
  return %0 : tensor<2x3xf32>
}

// CHECK:      // exit 1
// CHECK-NEXT: error_broadcast_shapes.mlir:3:8: error: 'tg.add' op operands have incompatible shapes for broadcasting: tensor<2x3xf32> and tensor<3x2xf32>
// CHECK-NEXT: %0 = "tg.add"(%a, %b) : (tensor<2x3xf32>, tensor<3x2xf32>) -> tensor<2x3xf32>
// CHECK-NEXT: ^
