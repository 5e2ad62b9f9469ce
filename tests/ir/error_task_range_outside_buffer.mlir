// RUN:
// A task names bytes past the end of its buffer.
"task.graph"() ({
  "task.buffer"() {sym_name = "arena", bytes = 256 : i64} : () -> ()
  "task.task"() {kind = "k", group = 0 : i64, output = 0 : i64, tile = [#task.box<0:64>],
                 reads = [], writes = [#task.range<arena, 0, 512>], bytes = 0.0 : f64,
                 flops = 0.0 : f64, waits = [], signals = []} : () -> ()
}) : () -> ()
