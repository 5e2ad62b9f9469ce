C=tests/fixtures/configs
cp -r /tmp/q4 $D/art/bench-1b-q4_0-base; rm -f $D/art/bench-1b-q4_0-base/kernel.mlir $D/art/bench-1b-q4_0-base/*/kernel.mlir
for q in q8_0 q4_0 q4_1 q4_k q6_k; do comp kq-$q /work/s15/kq --quantize $q --random-weights; done
comp bench-1b-bf16 $C/llama-3.2-1b.json
comp bench-1b-q4_0 $C/llama-3.2-1b.json --quantize q4_0
comp bench-1b-q8_0 $C/llama-3.2-1b.json --quantize q8_0
comp bench-8b-q4_0 $C/llama-3.1-8b.json --quantize q4_0
comp bench-8b-q8_0 $C/llama-3.1-8b.json --quantize q8_0
mkdir -p $D/kq && cp /work/s15/kq/config.json $D/kq/
for q in q8_0 q4_0 q4_1; do comp kqw-$q /work/s15/kqw --quantize $q --random-weights; done
mkdir -p $D/kqw && cp /work/s15/kqw/config.json $D/kqw/
