#!/usr/bin/env bash
# spill.sh "FLAGS" [env...]: ptxas registers/spills of the fixtures' and 1B's kernels in four of tests/cli/gpu.rs's variants, FLAGS added, env applied
cd /work/main; P=/root/.cache/mkc/ptxas/ptxas; X="$1"; shift
for f in tests/fixtures/llama-tiny tests/fixtures/qwen3-tiny tests/fixtures/mistral-tiny tests/fixtures/qwen2-tiny tests/fixtures/llama3-tiny tests/fixtures/configs/llama-3.2-1b.json tests/fixtures/configs/smollm2-135m.json; do
 [ -e $f ] || f=../shared/configs/$(basename $f)
 for v in "" "--attention-parts 1" "--ctx 100" "--attention-combine prologue"; do
  env "$@" ./target/release/mkc compile $f $v $X --emit=ptx -o /tmp/sp.ptx 2>/dev/null || { echo "$f [$v] compile failed"; continue; }
  r=$($P -arch=sm_90a -v /tmp/sp.ptx -o /tmp/sp.cubin 2>&1 | grep -E 'Used|spill' | tr -s ' ' | tr '\n' ' ')
  echo "$(basename $f) [$v] $(echo $r | grep -o 'Used [0-9]* registers') $(echo $r | grep -o '[0-9]* bytes spill stores')"
 done
done
