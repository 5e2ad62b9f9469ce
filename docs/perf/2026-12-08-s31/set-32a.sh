# For session 32's first call (built by session 31 from session 30's set-31a.sh, which never ran: no device in session 31): Qwen3-0.6B `--k-row` scheduled with the cost model
# tuned on its own trace (`q3-rc`: `mkc tune trace-q3-r.json.gz --schedule q3-r/short/program.mlir`; session 30's
# estimate, one price a kind, said 4.3% faster (0.8865 against 0.9261 ms); session 31's, drawing each task's time from
# its kind's spread, says 0.8930 against 0.8937: no gain, a test of the new estimate) beside `q3-h` and
# `q3-r`; the 8B with `--split-k mlp` (`b8-k`, never run) and `both` (`b8-b`: session 30's bench of it was killed
# while its weights were still being placed on the host, fixed in session 31: run with BT=240); SmolLM2 with `--split-k both` (`bs-b`) and with
# `--preload-split-k 4` too (`bs-bp`: session 28 measured -1.7% for it beside `--split-k attention`; `fxp` checks
# that combination on llama-tiny's three programs first).
# Session 30's set-31a (q3-h, q3-r, q3-rc, fxp, bs-b, bs-bp, b8-k, b8-b; it defines C and M), then this session's.
source docs/perf/2026-12-07-s30/set-31a.sh
# Qwen3 `--k-row` with every small task in a queue (`--last-signal-bytes 0`: the K row's cache update no longer runs
# on its producer's last signal): the drawn estimate under the model tuned on trace-q3-r says -2.8% (`q3-r0`, 0.8687
# against 0.8937) and -4.5% with `--split-k both` (`q3-rb0` beside `q3-rb`); `fxr0` checks it on qwen3-tiny first.
MKC=$M comp q3-rb $C/qwen3-0.6b.json --k-row --split-k both
MKC=$M comp q3-r0 $C/qwen3-0.6b.json --k-row --last-signal-bytes 0
MKC=$M comp q3-rb0 $C/qwen3-0.6b.json --k-row --split-k both --last-signal-bytes 0
MKC=$M comp fxr0-qwen3-tiny tests/fixtures/qwen3-tiny --k-row --split-k both --last-signal-bytes 0 --short-steps 8 --long-steps 16
