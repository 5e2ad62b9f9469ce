// RUN: --allow-unregistered-dialect
func.func @types(%a: tensor<f32>, %b: tensor<1x2x3x4xbf16>, %c: tensor<2xi1>, %d: tensor<3xindex>, %e: tensor<0x5xf16>, %f: i64, %g: !task.event, %h: !demo.thing<4, "x">) -> (tensor<f32>, !task.event) {
  "demo.use"(%b, %c, %d, %e, %f, %h) : (tensor<1x2x3x4xbf16>, tensor<2xi1>, tensor<3xindex>, tensor<0x5xf16>, i64, !demo.thing<4, "x">) -> ()
  %n = "demo.none"() : () -> none
  return %a, %g : tensor<f32>, !task.event
}
