# Session 30's call 1 (built by session 29, which had no device): `--k-row` on the GPU first (qwen3-tiny: `fxr` three
# programs, `fxw` attention whole, `fxo` KV-group tiles, the online pass; `fxp` with `--prefetch-light-inputs`), then
# Qwen3-0.6B at 128 with HEAD's defaults (`h`), `--k-row` (`r`: attention computes the step's per-head-normalised K
# row and its queries' norm and rope itself; no q/k norm phase), with `--split-k mlp` (`rk`) or `attention` (`ra`)
# or `--prefetch-light-inputs` (`rp`), and session 28's splits on SmolLM2 and 1B (`a`, `k`) beside `h`.
# (Split from set 29b so that each call carries less than 64 MiB with the 42 MiB checkout.)
C=tests/fixtures/configs
S=../shared/configs/smollm2-135m.json
F=tests/fixtures
M=target/release/mkc
MKC=$M comp fxr-qwen3-tiny $F/qwen3-tiny --k-row --short-steps 8 --long-steps 16
MKC=$M comp fxw-qwen3-tiny $F/qwen3-tiny --k-row --attention-parts 1
MKC=$M comp fxo-qwen3-tiny $F/qwen3-tiny --k-row --attention-parts 16 --sms 32 --short-steps 0
MKC=$M comp fxp-qwen3-tiny $F/qwen3-tiny --k-row --prefetch-light-inputs --short-steps 8 --long-steps 16
MKC=$M comp q3-h $C/qwen3-0.6b.json
MKC=$M comp q3-r $C/qwen3-0.6b.json --k-row
MKC=$M comp q3-rk $C/qwen3-0.6b.json --k-row --split-k mlp
MKC=$M comp q3-ra $C/qwen3-0.6b.json --k-row --split-k attention
MKC=$M comp q3-rp $C/qwen3-0.6b.json --k-row --prefetch-light-inputs
for m in "bs:$S" "b1:$C/llama-3.2-1b.json"; do
  n=${m%%:*}; p=${m#*:}
  MKC=$M comp $n-h $p
  MKC=$M comp $n-a $p --split-k attention
  MKC=$M comp $n-k $p --split-k mlp
done
