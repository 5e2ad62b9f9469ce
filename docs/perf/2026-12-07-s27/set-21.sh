# Session 27's second call: where a split-K mlp task's time goes (SmolLM2 `--split-k`). The trace's work
# slice starts at the end of op N of every code that has one: op 0 (the norm), op 1 (gate and up, one loop),
# op 4 (h = silu(gate) * up: then the matmul_acc and the task's end), op 5 (the matmul_acc's reductions
# issued: then only the end).
S=../shared/configs/smollm2-135m.json
M=target/release/mkc
for n in 0 1 4 5; do MKC=$M comp bs-k$n $S --split-k --trace-mark op-$n; done
