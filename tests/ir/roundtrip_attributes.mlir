// RUN: --allow-unregistered-dialect
func.func @attrs() {
  "demo.attrs"() {i = 7 : i32, neg = -3 : i64, idx = 2 : index, u = 200 : ui8, b = true, f = 2.5 : f32, d = 1.0e-300 : f64, s = "text", t = tensor<2x2xbf16>, ft = (f32, i64) -> f32, sym = @attrs, nested = @outer::@inner, arr = [1 : i32, "x", [f32, unit]], dict = {z = 1 : i64, a = false}, flag, w = #mkc.weight<"model.norm.weight">, o = #demo.opaque<"payload", [1, 2]>} : () -> ()
  return
}
