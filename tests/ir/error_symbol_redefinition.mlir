// RUN:
func.func @f() {
  return
}
func.func @f() {
  return
}

// CHECK:      // exit 1
// CHECK-NEXT: error_symbol_redefinition.mlir:5:1: error: 'func.func' op redefinition of symbol '@f'
// CHECK-NEXT: func.func @f() {
// CHECK-NEXT: ^
// CHECK-NEXT: error_symbol_redefinition.mlir:2:1: note: previous definition here
// CHECK-NEXT: func.func @f() {
// CHECK-NEXT: ^
