C=tests/fixtures/configs
S=../shared/configs/smollm2-135m.json
for m in kq kqw kqs; do for q in q8_0 q4_0 q4_1; do comp $m-$q-i8 /work/s17/$m --quantize $q --int8-activations; done; done
comp bench-1b-bf16-d $C/llama-3.2-1b.json
for p in 2 3 4; do comp bench-1b-bf16-pre$p $C/llama-3.2-1b.json --preload $p; done
comp bench-qwen-bf16-d $C/qwen3-0.6b.json
comp bench-qwen-bf16-pre3 $C/qwen3-0.6b.json --preload 3
comp bench-smol-bf16-d $S
comp bench-smol-bf16-pre3 $S --preload 3
for q in q4_0 q8_0; do comp bench-1b-$q-i8 $C/llama-3.2-1b.json --quantize $q --int8-activations; done
comp bench8-8b-bf16-d $C/llama-3.1-8b.json
comp bench8-8b-bf16-pre3 $C/llama-3.1-8b.json --preload 3
for q in q4_0 q8_0; do comp bench8-8b-$q-i8 $C/llama-3.1-8b.json --quantize $q --int8-activations; done
