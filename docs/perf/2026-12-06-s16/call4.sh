#!/usr/bin/env bash
# call 4: per-position GPU-vs-simulator errors of int8 kernels; llama.cpp on SmolLM2's shapes.
cd "$(dirname "$0")"
out=$OUT
[ -x mkc ] || { xz -dc mkc.xz > mkc && chmod +x mkc; }
[ -d art ] || tar -xJf art.txz
for m in kq kqs; do [ -f $m/model.safetensors ] || python3 gen_kq.py $m; done
for n in kq-q4_0-i8 kq-q8_0-i8 kq-q4_1-i8 kqs-q4_0-i8; do
  m=${n%%-*}
  timeout 120 ./mkc check $m --engine gpu --artifact art/$n -v > $out/v-$n.txt 2>&1
done
cd llamapeer
[ -x build/bin/llama-bench ] || JOBS=16 bash build.sh > $out/llama-build.log 2>&1
python3 make_gguf.py configs/smollm2-135m.json /tmp/smol.gguf --type q4_0 --output-type q8_0 > $out/smol-gguf.txt 2>&1
./build/bin/llama-bench -m /tmp/smol.gguf -p 0 -n 128 -ngl 99 -r 5 -fa 0,1 -o md >> $out/smol-gguf.txt 2>&1
cd ..
./mkc bench art/bench-smol-q4_1-i8 --pos 128 --warmup 20 --steps 200 2>&1 | tail -1 >> $out/smol-gguf.txt
