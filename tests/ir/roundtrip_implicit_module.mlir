// RUN:
func.func @first(%x: tensor<2xf32>) -> tensor<2xf32> {
  return %x : tensor<2xf32>
}
func.func @second() {
  return
}

// Top-level functions are wrapped in an implicit module.
// CHECK:      module {
// CHECK-NEXT: func.func @first(%arg0: tensor<2xf32>) -> tensor<2xf32> {
// CHECK-NEXT: return %arg0 : tensor<2xf32>
// CHECK-NEXT: }
// CHECK-NEXT: func.func @second() {
// CHECK-NEXT: return
// CHECK-NEXT: }
// CHECK-NEXT: }
