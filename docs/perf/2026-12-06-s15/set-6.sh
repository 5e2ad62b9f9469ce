C=tests/fixtures/configs
for m in kq kqw kqs; do for q in q8_0 q4_0 q4_1; do comp $m-$q /work/s15/$m --quantize $q; done; done
comp kq-q4_k /work/s15/kq --quantize q4_k
for m in kq kqw kqs; do mkdir -p $D/$m && cp /work/s15/$m/config.json $D/$m/; done
comp bench-1b-q4_0 $C/llama-3.2-1b.json --quantize q4_0
comp bench-1b-q8_0 $C/llama-3.2-1b.json --quantize q8_0
MKC=/work/s15/mkc-v1 comp bench-1b-q4_0-v1 $C/llama-3.2-1b.json --quantize q4_0
MKC=/work/s15/mkc-v1 comp bench-1b-q8_0-v1 $C/llama-3.2-1b.json --quantize q8_0
comp bench-8b-q4_0 $C/llama-3.1-8b.json --quantize q4_0
comp gguf-smollm2 ~/.cache/mkc/models/SmolLM2-135M-Instruct.Q4_1.gguf
MKC=/work/s15/mkc-v1 comp gguf-smollm2-v1 ~/.cache/mkc/models/SmolLM2-135M-Instruct.Q4_1.gguf
