// RUN:
// A task names bytes past the end of its buffer.
"task.graph"() ({
  "task.buffer"() {sym_name = "arena", bytes = 256 : i64} : () -> ()
  "task.task"() {kind = "k", group = 0 : i64, output = 0 : i64, tile = [#task.box<0:64>],
                 reads = [], writes = [#task.range<arena, 0, 512>], bytes = 0.0 : f64,
                 flops = 0.0 : f64, waits = [], signals = []} : () -> ()
}) : () -> ()

// CHECK:      // exit 1
// CHECK-NEXT: error_task_range_outside_buffer.mlir:5:3: error: 'task.task' op range 0..512 is outside buffer 'arena' (256 bytes)
// CHECK-NEXT: "task.task"() {kind = "k", group = 0 : i64, output = 0 : i64, tile = [#task.box<0:64>],
// CHECK-NEXT: ^
