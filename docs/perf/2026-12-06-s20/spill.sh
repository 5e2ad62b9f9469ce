#!/usr/bin/env bash
# spill.sh [env...]: ptxas spills of the fixtures' and 1B's kernels in four of tests/cli/gpu.rs's variants (the default, --attention-parts 1, --ctx 100, --attention-combine prologue), env applied
cd /work/main; P=/root/.cache/mkc/ptxas/ptxas
for f in tests/fixtures/llama-tiny tests/fixtures/qwen3-tiny tests/fixtures/mistral-tiny tests/fixtures/qwen2-tiny tests/fixtures/llama3-tiny tests/fixtures/configs/llama-3.2-1b.json; do
 for v in "" "--attention-parts 1" "--ctx 100" "--attention-combine prologue"; do
  env "$@" ./target/release/mkc compile $f $v --emit=ptx -o /tmp/sp.ptx 2>/dev/null
  r=$($P -arch=sm_90a -v /tmp/sp.ptx -o /tmp/sp.cubin 2>&1 | grep -E 'spill' | grep -v " 0 bytes spill stores")
  [ -n "$r" ] && echo "$f [$v] $r"
 done
done; echo done
