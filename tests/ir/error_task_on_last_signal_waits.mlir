// RUN:
// A task run on the last signal of an event is run by whoever makes that one event ready:
// it cannot wait on a second.
"task.graph"() ({
  "task.buffer"() {sym_name = "arena", bytes = 256 : i64} : () -> ()
  "task.event"() {target = 1 : i64} : () -> ()
  "task.event"() {target = 1 : i64} : () -> ()
  "task.task"() {kind = "part", group = 0 : i64, output = 0 : i64, tile = [#task.box<0:32>],
                 reads = [], writes = [#task.range<arena, 0, 128>], bytes = 0.0 : f64,
                 flops = 0.0 : f64, waits = [], signals = [0]} : () -> ()
  "task.task"() {kind = "part", group = 0 : i64, output = 0 : i64, tile = [#task.box<32:64>],
                 reads = [], writes = [#task.range<arena, 128, 256>], bytes = 0.0 : f64,
                 flops = 0.0 : f64, waits = [], signals = [1]} : () -> ()
  "task.task"() {kind = "combine", group = 1 : i64, output = 0 : i64, tile = [#task.box<0:32>],
                 reads = [#task.range<arena, 0, 256>], writes = [], bytes = 0.0 : f64,
                 flops = 0.0 : f64, waits = [0, 1], signals = [], on_last_signal = true} : () -> ()
}) : () -> ()

// CHECK:      // exit 1
// CHECK-NEXT: error_task_on_last_signal_waits.mlir:14:3: error: 'task.task' op a task run on the last signal of an event waits on exactly one event, not 2
// CHECK-NEXT: "task.task"() {kind = "combine", group = 1 : i64, output = 0 : i64, tile = [#task.box<0:32>],
// CHECK-NEXT: ^
