// RUN:
func.func @f(%a: tensor<?x4xf32>) {
  return
}

// CHECK:      // exit 1
// CHECK-NEXT: error_dynamic_shape.mlir:2:25: error: dynamic dimensions are not supported: mkc needs static shapes
// CHECK-NEXT: func.func @f(%a: tensor<?x4xf32>) {
// CHECK-NEXT: ^
