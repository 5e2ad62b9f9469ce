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
