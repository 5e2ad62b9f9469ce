# For session 32's first call (built by session 31 from session 30's set-31a.sh, which never ran: no device in session 31): Qwen3-0.6B `--k-row` scheduled with the cost model
# tuned on its own trace (`q3-rc`: `mkc tune trace-q3-r.json.gz --schedule q3-r/short/program.mlir`; session 30's
# estimate, one price a kind, said 4.3% faster (0.8865 against 0.9261 ms); session 31's, drawing each task's time from
# its kind's spread, says 0.8930 against 0.8937: no gain, a test of the new estimate) beside `q3-h` and
# `q3-r`; the 8B with `--split-k mlp` (`b8-k`, never run) and `both` (`b8-b`: session 30's bench of it was killed
# while its weights were still being placed on the host, fixed in session 31: run with BT=240); SmolLM2 with `--split-k both` (`bs-b`) and with
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
# Qwen3 `--k-row` with every small task in a queue (`--last-signal-bytes 0`: the K row's cache update no longer runs
# on its producer's last signal): the drawn estimate under the model tuned on trace-q3-r says -2.8% (`q3-r0`, 0.8687
# against 0.8937) and -4.5% with `--split-k both` (`q3-rb0` beside `q3-rb`); `fxr0` checks it on qwen3-tiny first.
MKC=$M comp q3-rb $C/qwen3-0.6b.json --k-row --split-k both
MKC=$M comp q3-r0 $C/qwen3-0.6b.json --k-row --last-signal-bytes 0
MKC=$M comp q3-rb0 $C/qwen3-0.6b.json --k-row --split-k both --last-signal-bytes 0
MKC=$M comp fxr0-qwen3-tiny tests/fixtures/qwen3-tiny --k-row --split-k both --last-signal-bytes 0 --short-steps 8 --long-steps 16
