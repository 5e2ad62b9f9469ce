# Session 26's second call: HEAD's defaults (constant box extents since call 1) beside the old record extents on
# every row, bf16 and quantized; the smallest tile (`--min-tile-bytes`) and the bf16 preload on SmolLM2, 1B and
# Qwen3, each checked on the fixtures first.
C=tests/fixtures/configs
S=../shared/configs/smollm2-135m.json
F=tests/fixtures
M=target/release/mkc
for f in llama-tiny qwen3-tiny mistral-tiny qwen2-tiny llama3-tiny; do
  MKC=$M comp fxp3-$f $F/$f --preload 3 --short-steps 8 --long-steps 16
  MKC=$M comp fxm1k-$f $F/$f --min-tile-bytes 1024 --short-steps 8 --long-steps 16
done
MKC=$M comp bs-h $S
MKC=$M comp bs-r $S --tile-extents record
MKC=$M comp bs-p3 $S --preload 3
MKC=$M comp bs-m1k $S --min-tile-bytes 1024
MKC=$M comp bs-m4k $S --min-tile-bytes 4096
MKC=$M comp bs-p3m1k $S --preload 3 --min-tile-bytes 1024
MKC=$M comp b1-h $C/llama-3.2-1b.json
MKC=$M comp b1-m1k $C/llama-3.2-1b.json --min-tile-bytes 1024
MKC=$M comp b1-p4 $C/llama-3.2-1b.json --preload 4
MKC=$M comp q3-h $C/qwen3-0.6b.json
MKC=$M comp q3-m1k $C/qwen3-0.6b.json --min-tile-bytes 1024
MKC=$M comp b8-h $C/llama-3.1-8b.json
MKC=$M comp b8-r $C/llama-3.1-8b.json --tile-extents record
MKC=$M comp b1q-h $C/llama-3.2-1b.json --quantize q4_0 --int8-activations
MKC=$M comp b1q-r $C/llama-3.2-1b.json --quantize q4_0 --int8-activations --tile-extents record
