# Session 26's first call: `--split-k` (an MLP's down projection added onto the residual by its gate/up
# tasks) checked on the fixtures (GPU against transformers and the simulator, and the GPU's own argmax tokens)
# and timed beside HEAD's defaults; session 25's options (constant extents, no sleep between polls, Qwen3's
# rope over 8 SMs, preload 3) timed on the same machine; traces of SmolLM2 with split-K and of Qwen3.
C=tests/fixtures/configs
S=../shared/configs/smollm2-135m.json
F=tests/fixtures
M=target/release/mkc
for f in llama-tiny qwen3-tiny mistral-tiny qwen2-tiny llama3-tiny; do
  MKC=$M comp fxk-$f $F/$f --split-k --short-steps 8 --long-steps 16
  MKC=$M comp fxc-$f $F/$f --tile-extents constant --short-steps 8 --long-steps 16
done
MKC=$M comp bs-h $S
MKC=$M comp bs-k $S --split-k
MKC=$M comp bs-c $S --tile-extents constant
MKC=$M comp bs-ck $S --tile-extents constant --split-k
MKC=$M comp bs-p3 $S --preload 3
MKC=$M comp bs-s0 $S --poll-sleep 0
MKC=$M comp b1-h $C/llama-3.2-1b.json
MKC=$M comp b1-k $C/llama-3.2-1b.json --split-k
MKC=$M comp b1-c $C/llama-3.2-1b.json --tile-extents constant
MKC=$M comp q3-h $C/qwen3-0.6b.json
MKC=$M comp q3-k $C/qwen3-0.6b.json --split-k
MKC=$M comp q3-c $C/qwen3-0.6b.json --tile-extents constant
MKC=$M comp q3-m1k $C/qwen3-0.6b.json --min-tile-bytes 1024
