#!/usr/bin/env bash
# spills.sh MKC...: ptxas (scripts/setup's, 12.9) registers and spill bytes of each compiler's kernels: the fixtures and
# configs at the default, --preload 3, and the quantized int8 kernels of the benchmark rows. Run from the repo root.
P=${PTXAS:-$HOME/.cache/mkc/ptxas/ptxas}
for m in "$@"; do
 for f in tests/fixtures/llama-tiny tests/fixtures/qwen3-tiny tests/fixtures/mistral-tiny tests/fixtures/qwen2-tiny tests/fixtures/llama3-tiny \
          tests/fixtures/configs/llama-3.2-1b.json ../shared/configs/smollm2-135m.json tests/fixtures/configs/qwen3-0.6b.json tests/fixtures/configs/llama-3.1-8b.json; do
  for v in "" "--preload 3" "--attention-parts 1" "--quantize q4_0 --int8-activations" "--quantize q8_0 --int8-activations"; do
   case "$f$v" in *tiny*quantize*) continue;; esac
   $m compile $f $v --emit=ptx -o /tmp/spills.ptx 2>/dev/null || { echo "$m $f [$v] compile failed"; continue; }
   r=$($P -arch=sm_90a -v /tmp/spills.ptx -o /dev/null 2>&1 | tr '\n' ' ')
   echo "$(basename $m) $(basename $f) [$v] $(echo $r | grep -o '[0-9]* bytes spill stores' | cut -d' ' -f1)"
  done
 done
done
