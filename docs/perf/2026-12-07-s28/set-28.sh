# The next call (not run): `--split-k attention` and `--split-k mlp` at position 2047 (the main and long programs,
# where the combine's tasks add the output projection) and 128, beside HEAD's defaults, on every bf16 row; `ap`:
# `--split-k attention --preload-split-k 4` (SmolLM2 -1.6% against `a` at 128). Run with POS=2047 and POS=128.
C=tests/fixtures/configs
S=../shared/configs/smollm2-135m.json
M=target/release/mkc
for m in "bs:$S" "b1:$C/llama-3.2-1b.json" "q3:$C/qwen3-0.6b.json" "b8:$C/llama-3.1-8b.json"; do
  n=${m%%:*}; p=${m#*:}
  MKC=$M comp $n-h $p
  MKC=$M comp $n-a $p --split-k attention
  MKC=$M comp $n-k $p --split-k mlp
  MKC=$M comp $n-ap $p --split-k attention --preload-split-k 4
done
