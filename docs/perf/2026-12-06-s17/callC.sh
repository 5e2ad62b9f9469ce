#!/usr/bin/env bash
cd "$(dirname "$0")"
B="--warmup 20 --steps 200"
[ -x mkc ] || { xz -dc mkc.xz > mkc && chmod +x mkc; }
[ -d art ] || tar -xJf art.txz
for m in kqw; do [ -f $m/model.safetensors ] || python3 gen_kq.py $m; done
for d in art/kqw*; do n=$(basename $d); r=$(timeout 120 ./mkc check kqw --engine gpu -v --artifact $d 2>&1); echo "$r" > $OUT/v-$n.txt
  echo "check $n: $(echo "$r" | grep -iE 'vs sim|vs_sim|position' | tr '\n' ' ' | cut -c1-900)"; done
for d in art/fix-*; do n=$(basename $d); f=${n#fix-*-}; f=${f%-*}; extra=(); case $n in *-onnx) extra=(--onnx);; esac
  r=$(timeout 60 ./mkc check ../../../tests/fixtures/$f --engine gpu "${extra[@]}" --artifact $d 2>&1); echo "check $n: rc=$? $(echo "$r" | grep max_rel_err | tail -1 | cut -c1-260)"; done
for round in 1 2; do for d in art/bench-*; do r=$(timeout 150 ./mkc bench $d --pos 128 $B 2>&1); echo "bench $(basename $d) r$round: $(echo "$r" | tail -1 | grep -o '"median_ms":[0-9.]*')"; done; done
for d in art/bench1-*; do r=$(timeout 150 ./mkc bench $d --pos 128 $B 2>&1); echo "bench $(basename $d): $(echo "$r" | tail -1 | grep -o '"median_ms":[0-9.]*')"; done
