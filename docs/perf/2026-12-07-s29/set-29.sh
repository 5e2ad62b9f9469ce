# Session 30's call (built by session 29, which had no device): `--k-row` on Qwen3-0.6B (`r`: attention computes
# the step's per-head-normalised K row and its queries' norm and rope itself; no q/k norm phase; new), alone and
# with `--split-k mlp` (`rk`) or `attention` (`ra`) or `--prefetch-light-inputs` (`rp`: the inputs of attention's later norms
# and ropes asked into L1 after the wait), at 128 and 2047 beside HEAD's defaults (`h`); qwen3-tiny
# with `--k-row` on the GPU (`fxr` three programs, `fxw` attention whole, `fxo` KV-group tiles: the online pass); and session 28's untimed set
# (`--split-k attention` `a`, `--split-k mlp` `k` at 2047 on every bf16 row; `ap` = `a` + `--preload-split-k 4`).
C=tests/fixtures/configs
S=../shared/configs/smollm2-135m.json
F=tests/fixtures
M=target/release/mkc
MKC=$M comp fxr-qwen3-tiny $F/qwen3-tiny --k-row --short-steps 8 --long-steps 16
MKC=$M comp fxw-qwen3-tiny $F/qwen3-tiny --k-row --attention-parts 1
MKC=$M comp fxo-qwen3-tiny $F/qwen3-tiny --k-row --attention-parts 16 --sms 32 --short-steps 0
MKC=$M comp q3-r $C/qwen3-0.6b.json --k-row
MKC=$M comp q3-rk $C/qwen3-0.6b.json --k-row --split-k mlp
MKC=$M comp q3-ra $C/qwen3-0.6b.json --k-row --split-k attention
MKC=$M comp q3-rp $C/qwen3-0.6b.json --k-row --prefetch-light-inputs
MKC=$M comp fxp-qwen3-tiny $F/qwen3-tiny --k-row --prefetch-light-inputs --short-steps 8 --long-steps 16
for m in "bs:$S" "b1:$C/llama-3.2-1b.json" "q3:$C/qwen3-0.6b.json" "b8:$C/llama-3.1-8b.json"; do
  n=${m%%:*}; p=${m#*:}
  MKC=$M comp $n-h $p
  MKC=$M comp $n-a $p --split-k attention
  MKC=$M comp $n-k $p --split-k mlp
  MKC=$M comp $n-ap $p --split-k attention --preload-split-k 4
done
