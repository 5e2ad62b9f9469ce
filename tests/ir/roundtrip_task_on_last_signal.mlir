// RUN:
// Two parts signal one event; its last signal runs the combine (no queue slot), whose
// signal a queued task waits on.
"task.graph"() ({
  "task.buffer"() {sym_name = "arena", bytes = 512 : i64} : () -> ()
  "task.event"() {target = 2 : i64} : () -> ()
  "task.event"() {target = 1 : i64} : () -> ()
  "task.task"() {kind = "part", group = 0 : i64, output = 0 : i64, tile = [#task.box<0:32>],
                 reads = [], writes = [#task.range<arena, 0, 128>], bytes = 0.0 : f64,
                 flops = 0.0 : f64, waits = [], signals = [0], sm = 0 : i64, slot = 0 : i64} : () -> ()
  "task.task"() {kind = "part", group = 0 : i64, output = 0 : i64, tile = [#task.box<32:64>],
                 reads = [], writes = [#task.range<arena, 128, 256>], bytes = 0.0 : f64,
                 flops = 0.0 : f64, waits = [], signals = [0], sm = 1 : i64, slot = 0 : i64} : () -> ()
  "task.task"() {kind = "combine", group = 1 : i64, output = 0 : i64, tile = [#task.box<0:32>],
                 reads = [#task.range<arena, 0, 256>], writes = [#task.range<arena, 256, 384>],
                 bytes = 0.0 : f64, flops = 0.0 : f64, waits = [0], signals = [1],
                 on_last_signal = true} : () -> ()
  "task.task"() {kind = "use", group = 2 : i64, output = 0 : i64, tile = [#task.box<0:32>],
                 reads = [#task.range<arena, 256, 384>], writes = [], bytes = 0.0 : f64,
                 flops = 0.0 : f64, waits = [1], signals = [], sm = 1 : i64, slot = 1 : i64} : () -> ()
}) : () -> ()

// The task.graph gets a module around it; attributes print sorted.
// CHECK:      module {
// CHECK-NEXT: "task.graph"() ({
// CHECK-NEXT: "task.buffer"() {bytes = 512 : i64, sym_name = "arena"} : () -> ()
// CHECK-NEXT: "task.event"() {target = 2 : i64} : () -> ()
// CHECK-NEXT: "task.event"() {target = 1 : i64} : () -> ()
// CHECK-NEXT: "task.task"() {bytes = 0.0 : f64, flops = 0.0 : f64, group = 0 : i64, kind = "part", output = 0 : i64, reads = [], signals = [0 : i64], slot = 0 : i64, sm = 0 : i64, tile = [#task.box<0:32>], waits = [], writes = [#task.range<arena, 0, 128>]} : () -> ()
// CHECK-NEXT: "task.task"() {bytes = 0.0 : f64, flops = 0.0 : f64, group = 0 : i64, kind = "part", output = 0 : i64, reads = [], signals = [0 : i64], slot = 0 : i64, sm = 1 : i64, tile = [#task.box<32:64>], waits = [], writes = [#task.range<arena, 128, 256>]} : () -> ()
// CHECK-NEXT: "task.task"() {bytes = 0.0 : f64, flops = 0.0 : f64, group = 1 : i64, kind = "combine", on_last_signal = true, output = 0 : i64, reads = [#task.range<arena, 0, 256>], signals = [1 : i64], tile = [#task.box<0:32>], waits = [0 : i64], writes = [#task.range<arena, 256, 384>]} : () -> ()
// CHECK-NEXT: "task.task"() {bytes = 0.0 : f64, flops = 0.0 : f64, group = 2 : i64, kind = "use", output = 0 : i64, reads = [#task.range<arena, 256, 384>], signals = [], slot = 1 : i64, sm = 1 : i64, tile = [#task.box<0:32>], waits = [1 : i64], writes = []} : () -> ()
// CHECK-NEXT: }) : () -> ()
// CHECK-NEXT: }
