// RUN:
// An event whose target is not the number of tasks that signal it would never be ready.
"task.graph"() ({
  "task.buffer"() {sym_name = "arena", bytes = 256 : i64} : () -> ()
  "task.event"() {target = 2 : i64} : () -> ()
  "task.task"() {kind = "k", group = 0 : i64, output = 0 : i64, tile = [#task.box<0:64>],
                 reads = [], writes = [#task.range<arena, 0, 256>], bytes = 0.0 : f64,
                 flops = 0.0 : f64, waits = [], signals = [0]} : () -> ()
  "task.task"() {kind = "k", group = 0 : i64, output = 1 : i64, tile = [#task.box<0:64>],
                 reads = [#task.range<arena, 0, 256>], writes = [], bytes = 0.0 : f64,
                 flops = 0.0 : f64, waits = [0], signals = []} : () -> ()
}) : () -> ()

// CHECK:      // exit 1
// CHECK-NEXT: error_task_event_target.mlir:5:3: error: 'task.event' op event 0 has target 2 but 1 task(s) signal it
// CHECK-NEXT: "task.event"() {target = 2 : i64} : () -> ()
// CHECK-NEXT: ^
