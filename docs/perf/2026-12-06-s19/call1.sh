#!/usr/bin/env bash
# call 1: checks (kv-prefetch on the fixtures, shared rounding on 2-layer q4_0 int8 models), then benches at 128.
cd "$(dirname "$0")"
B="--warmup 20 --steps 200"
[ -x mkc ] || { xz -dc mkc.xz > mkc && chmod +x mkc; }
[ -d art ] || tar -xJf art.txz
nvidia-smi --query-gpu=name --format=csv,noheader
for m in ${KQ:-}; do [ -f $m/model.safetensors ] || python3 gen_kq.py $m >/dev/null; done
for d in art/fx-*; do f=${d#art/fx-}
  r=$(timeout 60 ./mkc check ../../../tests/fixtures/$f --engine gpu --artifact $d 2>&1); echo "check $f: $(echo "$r" | tail -2 | tr '\n' ' ')"
done
for m in ${KQ:-}; do
  r=$(timeout 60 ./mkc check $m --engine gpu --artifact art/kc-$m 2>&1); echo "check kc-$m: $(echo "$r" | grep -E 'max_rel_err_vs_sim' | tail -1) $(echo "$r" | grep -iE 'error|panic' | tail -1)"
done
for n in ${BENCH}; do
  r=$(timeout 100 ./mkc bench art/$n --pos 128 $B 2>&1); echo "bench $n: $(echo "$r" | tail -1)"
done
for n in ${TRACE:-}; do
  timeout 100 ./mkc bench art/$n --pos 128 $B --trace $OUT/trace-$n.json > /dev/null 2>&1
  gzip -f $OUT/trace-$n.json; echo "trace $n"; python3 tr2.py $OUT/trace-$n.json.gz 7
done
