#!/usr/bin/env bash
# call B (in target/dev/s17b): the 8B benches, then traces with summaries on stdout.
cd "$(dirname "$0")"
out=$OUT; B="--warmup 20 --steps 200"
[ -x mkc ] || { xz -dc mkc.xz > mkc && chmod +x mkc; }
[ -d art ] || tar -xJf art.txz
nvidia-smi --query-gpu=name --format=csv,noheader
for d in art/bench8-*; do
  r=$(timeout 150 ./mkc bench "$d" --pos 128 $B 2>&1); echo "bench $(basename $d): $(echo "$r" | tail -1)"
done
for n in ${TRACE:-}; do
  timeout 150 ./mkc bench art/$n --pos 128 $B --trace $out/trace-$n.json > /dev/null 2>&1
  gzip -f $out/trace-$n.json; echo "trace $n"; python3 tr.py $out/trace-$n.json.gz 12
done
