# For session 31's first call (built by session 30; not run): Qwen3-0.6B `--k-row` scheduled with the cost model
# tuned on its own trace (`q3-rc`: `mkc tune trace-q3-r.json.gz --schedule q3-r/short/program.mlir`, which
# estimates the traced step within 0.2% and this schedule 4.3% faster, 0.8865 against 0.9261 ms) beside `q3-h` and
# `q3-r`; the 8B with `--split-k mlp` (`b8-k`, never run) and `both` (`b8-b`, did not finish in session 30), to run
# under `compute-sanitizer` first (a hang or a fault); SmolLM2 with `--split-k both` (`bs-b`) and with
# `--preload-split-k 4` too (`bs-bp`: session 28 measured -1.7% for it beside `--split-k attention`; `fxp` checks
# that combination on llama-tiny's three programs first).
C=tests/fixtures/configs
M=target/release/mkc
P=docs/perf/2026-12-07-s30
MKC=$M comp q3-h $C/qwen3-0.6b.json
MKC=$M comp q3-r $C/qwen3-0.6b.json --k-row
MKC=$M comp q3-rc $C/qwen3-0.6b.json --k-row --cost-model $P/cost-model-q3-r.json
S=../shared/configs/smollm2-135m.json
MKC=$M comp fxp-llama-tiny tests/fixtures/llama-tiny --split-k both --preload-split-k 4 --short-steps 8 --long-steps 16
MKC=$M comp bs-b $S --split-k both
MKC=$M comp bs-bp $S --split-k both --preload-split-k 4
MKC=$M comp b8-k $C/llama-3.1-8b.json --split-k mlp
MKC=$M comp b8-b $C/llama-3.1-8b.json --split-k both
