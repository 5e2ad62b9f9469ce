C=tests/fixtures/configs
for q in q8_0 q4_0 q4_1 q4_k q6_k; do comp kq-$q /work/s15/kq --quantize $q; done
for q in q8_0 q4_0 q4_1; do comp kqw-$q /work/s15/kqw --quantize $q; done
mkdir -p $D/kq $D/kqw && cp /work/s15/kq/config.json $D/kq/ && cp /work/s15/kqw/config.json $D/kqw/
comp bench-1b-bf16 $C/llama-3.2-1b.json
comp bench-1b-q4_0 $C/llama-3.2-1b.json --quantize q4_0
comp bench-1b-q8_0 $C/llama-3.2-1b.json --quantize q8_0
MKC=/work/s15/mkc-base comp bench-1b-q4_0-base $C/llama-3.2-1b.json --quantize q4_0
MKC=/work/s15/mkc-base comp bench-1b-q8_0-base $C/llama-3.2-1b.json --quantize q8_0
comp bench-8b-q4_0 $C/llama-3.1-8b.json --quantize q4_0
comp bench-8b-q8_0 $C/llama-3.1-8b.json --quantize q8_0
comp gguf-smollm2 ~/.cache/mkc/models/SmolLM2-135M-Instruct.Q4_1.gguf
