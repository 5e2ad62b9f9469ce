#!/usr/bin/env bash
# Session 13 (issue 22), call 1, run in .gpu/ on the H100. Made by
#   FIXTURE_VARIANTS="default=;small=--attention-parts 16 --sms 32 --smem-scratch 32768" \
#   CONFIGS="llama-3.2-1b qwen3-0.6b llama-3.1-8b" scripts/gpu-bundle
# then, added to art.txz: art/bench-<config>-base (compiled by 31d8337's release mkc) and
# mkc-base (31d8337's runtime-only build). Every fixture artifact checked on the GPU, then the
# three configs timed: this tree's artifacts with this tree's runtime, beside the starting
# revision's artifacts with that revision's runtime, interleaved.
set -uo pipefail
cd "$(dirname "$0")"
out=${OUT:-gpu-out}; mkdir -p "$out"
CTX=128 CHECK=1 BENCH_FILTER='^$' ./gpu-run >/dev/null 2>&1   # unpacks and links; checks
for round in 1 2; do
  for c in llama-3.2-1b qwen3-0.6b llama-3.1-8b; do
    for pos in 128 2047; do
      r=$(timeout 150 ./mkc bench art/bench-$c-default --pos $pos --warmup 20 --steps 200 2>&1 | tail -1)
      echo "round $round new  $c pos=$pos: $r" | tee -a "$out/bench.txt"
      r=$(timeout 150 ./mkc-base bench art/bench-$c-base --pos $pos --warmup 20 --steps 200 2>&1 | tail -1)
      echo "round $round base $c pos=$pos: $r" | tee -a "$out/bench.txt"
    done
  done
done
