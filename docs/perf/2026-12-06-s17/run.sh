#!/usr/bin/env bash
# On the device (in target/dev/s16): unpack, check int8 kernels against the simulator, time benchmarks.
set -uo pipefail
cd "$(dirname "$0")"
out=${OUT:-out}; mkdir -p "$out"
B="--warmup 20 --steps 200"
STAGE=${STAGE:-all}
if [ ! -x mkc ]; then xz -dc mkc.xz > mkc && chmod +x mkc; fi
[ -d art ] || tar -xJf art.txz
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.mem --format=csv,noheader | tee "$out/checks.txt"
if [ "$STAGE" = all ] || [ "$STAGE" = checks ]; then
  for m in kq kqw kqs; do [ -f $m/model.safetensors ] || python3 gen_kq.py $m; done
  for d in art/kq*; do
    n=$(basename "$d"); m=${n%%-*}
    r=$(timeout 120 ./mkc check $m --engine gpu --artifact "$d" 2>&1); rc=$?
    echo "check $n: rc=$rc $(echo "$r" | grep -E 'max_rel_err_vs_sim' | tail -1) $(echo "$r" | grep -iE 'error|panic' | tail -1)" >> "$out/checks.txt"
    echo "$r" > "$out/check-$n.txt"
  done
fi
if [ "$STAGE" = all ] || [ "$STAGE" = bench ]; then
  for round in ${ROUNDS:-1 2}; do
    for d in art/bench-*; do
      r=$(timeout 150 ./mkc bench "$d" --pos 128 $B 2>&1); rc=$?
      echo "bench $(basename "$d") round=$round: rc=$rc $(echo "$r" | tail -1)" >> "$out/bench.txt"
    done
  done
fi
if [ "$STAGE" = bench8 ]; then
  for d in art/bench8-*; do
    r=$(timeout 150 ./mkc bench "$d" --pos 128 $B 2>&1); rc=$?
    echo "bench $(basename "$d"): rc=$rc $(echo "$r" | tail -1)" >> "$out/bench.txt"
  done
fi
if [ "$STAGE" = trace ]; then
  for n in ${TRACE:-bench-1b-q4_0-i8}; do
    r=$(timeout 150 ./mkc bench art/$n --pos 128 $B --trace "$out/trace-$n.json" 2>&1); rc=$?
    echo "trace $n: rc=$rc $(echo "$r" | tail -1)" >> "$out/bench.txt"
    gzip -f "$out/trace-$n.json"
  done
fi
