#!/usr/bin/env bash
# Session 31's calls (session 24's, with the bench's time limit BT (default 100 s), its load time printed, and on a
# failure or a timeout the bench's last lines, e.g. its weights progress): fixture checks (CHECK: HF artifacts; ONNX: artifacts of model.onnx, checked with --onnx), the GPU's
# own argmax tokens (RUNP) against the interpreter's, benches in BENCH order at POS, traces, the peer (PEER: configs).
cd "$(dirname "$0")"
B="--warmup 20 --steps 200"
[ -x mkc ] || { xz -dc mkc.xz > mkc && chmod +x mkc; }
[ -d art ] || tar -xJf art.txz
nvidia-smi --query-gpu=name --format=csv,noheader
for p in ${CHECK:-}; do for d in art/$p-*; do [ -d $d ] || continue; f=${d#art/$p-}
  r=$(timeout 60 ./mkc check ../../../tests/fixtures/$f --engine gpu --artifact $d 2>&1); echo "check $p $f: $(echo "$r" | tail -2 | tr '\n' ' ')"
done; done
for p in ${ONNX:-}; do for d in art/$p-*; do [ -d $d ] || continue; f=${d#art/$p-}
  r=$(timeout 90 ./mkc check ../../../tests/fixtures/$f --onnx --engine gpu --artifact $d 2>&1); echo "check onnx $p $f: $(echo "$r" | tail -2 | tr '\n' ' ')"
done; done
for rp in ${RUNP:-}; do while read f want; do
  got=$(timeout 60 ./mkc run ../../../tests/fixtures/$f --engine gpu --artifact art/$rp-$f --prompt-ids 7,300,12,99,401 --max-new-tokens 12 2>&1 | tail -1 | grep -o '"generated":\[[^]]*\]')
  [ "$got" = "$want" ] && echo "run $rp $f: same tokens as the interpreter" || echo "run $rp $f: DIFFERENT: gpu $got interp $want"
done < expected-run.txt; done
for n in ${BENCH}; do
  r=$(timeout ${BT:-100} ./mkc bench art/$n --pos ${POS:-128} $B 2>&1); echo "bench $n pos ${POS:-128}: $(echo "$r" | tail -1 | python3 -c 'import json,sys; d=json.loads(sys.stdin.read()); print(d["median_ms"], d["program"], "load_s %.1f" % d["load_s"])' 2>&1 || echo "$r" | tail -3)"
done
for n in ${TRACE:-}; do
  timeout 100 ./mkc bench art/$n --pos 128 $B --trace $OUT/trace-$n.json > /dev/null 2>&1
  gzip -f $OUT/trace-$n.json; echo "trace $n"; python3 ph.py $OUT/trace-$n.json.gz
done
for c in ${PEER:-}; do echo "peer $c: $(timeout 240 python3 peer_decode.py $c --ctx ${POS:-128} 2>&1 | tail -3 | tr '\n' ' ')"; done
