#!/usr/bin/env bash
# CHECK: artifact prefixes whose fixtures are checked on the GPU; BENCH: benches at POS (default 128) in order; TRACE: traces.
cd "$(dirname "$0")"
B="--warmup 20 --steps 200"
[ -x mkc ] || { xz -dc mkc.xz > mkc && chmod +x mkc; }
[ -d art ] || tar -xJf art.txz
nvidia-smi --query-gpu=name --format=csv,noheader
for p in ${CHECK:-}; do for d in art/$p-*; do [ -d $d ] || continue; f=${d#art/$p-}
  r=$(timeout 60 ./mkc check ../../../tests/fixtures/$f --engine gpu --artifact $d 2>&1); echo "check $p $f: $(echo "$r" | tail -2 | tr '\n' ' ')"
done; done
for n in ${BENCH}; do
  r=$(timeout 100 ./mkc bench art/$n --pos ${POS:-128} $B 2>&1); echo "bench $n: $(echo "$r" | tail -1 | python3 -c 'import json,sys; d=json.loads(sys.stdin.read()); print(d["median_ms"], d["program"])' 2>&1)"
done
for n in ${TRACE:-}; do
  timeout 100 ./mkc bench art/$n --pos 128 $B --trace $OUT/trace-$n.json > /dev/null 2>&1
  gzip -f $OUT/trace-$n.json; echo "trace $n"; python3 ph.py $OUT/trace-$n.json.gz
done
