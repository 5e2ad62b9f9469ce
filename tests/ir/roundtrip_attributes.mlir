// RUN: --allow-unregistered-dialect
func.func @attrs() {
  "demo.attrs"() {i = 7 : i32, neg = -3 : i64, idx = 2 : index, u = 200 : ui8, b = true, f = 2.5 : f32, d = 1.0e-300 : f64, s = "text", t = tensor<2x2xbf16>, ft = (f32, i64) -> f32, sym = @attrs, nested = @outer::@inner, arr = [1 : i32, "x", [f32, unit]], dict = {z = 1 : i64, a = false}, flag, w = #mkc.weight<"model.norm.weight">, o = #demo.opaque<"payload", [1, 2]>} : () -> ()
  return
}

// Every attribute kind prints back; a dictionary prints sorted by name.
// CHECK:      module {
// CHECK-NEXT: func.func @attrs() {
// CHECK-NEXT: "demo.attrs"() {arr = [1 : i32, "x", [f32, unit]], b = true, d = 1.0e-300 : f64, dict = {a = false, z = 1 : i64}, f = 2.5 : f32, flag, ft = (f32, i64) -> f32, i = 7 : i32, idx = 2 : index, neg = -3 : i64, nested = @outer::@inner, o = #demo.opaque<"payload", [1, 2]>, s = "text", sym = @attrs, t = tensor<2x2xbf16>, u = 200 : ui8, w = #mkc.weight<"model.norm.weight">} : () -> ()
// CHECK-NEXT: return
// CHECK-NEXT: }
// CHECK-NEXT: }
