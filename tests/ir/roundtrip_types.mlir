// RUN: --allow-unregistered-dialect
func.func @types(%a: tensor<f32>, %b: tensor<1x2x3x4xbf16>, %c: tensor<2xi1>, %d: tensor<3xindex>, %e: tensor<0x5xf16>, %f: i64, %g: !task.event, %h: !demo.thing<4, "x">) -> (tensor<f32>, !task.event) {
  "demo.use"(%b, %c, %d, %e, %f, %h) : (tensor<1x2x3x4xbf16>, tensor<2xi1>, tensor<3xindex>, tensor<0x5xf16>, i64, !demo.thing<4, "x">) -> ()
  %n = "demo.none"() : () -> none
  return %a, %g : tensor<f32>, !task.event
}

// Builtin, task and unregistered types print back.
// CHECK:      module {
// CHECK-NEXT: func.func @types(%arg0: tensor<f32>, %arg1: tensor<1x2x3x4xbf16>, %arg2: tensor<2xi1>, %arg3: tensor<3xindex>, %arg4: tensor<0x5xf16>, %arg5: i64, %arg6: !task.event, %arg7: !demo.thing<4, "x">) -> (tensor<f32>, !task.event) {
// CHECK-NEXT: "demo.use"(%arg1, %arg2, %arg3, %arg4, %arg5, %arg7) : (tensor<1x2x3x4xbf16>, tensor<2xi1>, tensor<3xindex>, tensor<0x5xf16>, i64, !demo.thing<4, "x">) -> ()
// CHECK-NEXT: %0 = "demo.none"() : () -> none
// CHECK-NEXT: return %arg0, %arg6 : tensor<f32>, !task.event
// CHECK-NEXT: }
// CHECK-NEXT: }
