C=tests/fixtures/configs
S=../shared/configs/smollm2-135m.json
H=/work/s17/mkc-head
comp kq-q4_0-i8 /work/s17/kq --quantize q4_0 --int8-activations
for m in kq kqw kqs; do for q in q8_0 q4_0 q4_1; do comp $m-$q-i8p4 /work/s17/$m --quantize $q --int8-activations --preload 4; done; done
comp kq-q4_0-b /work/s17/kq --quantize q4_0
comp kq-q4_1-bp2 /work/s17/kq --quantize q4_1 --preload 2
comp kq-q8_0-bp4 /work/s17/kq --quantize q8_0 --preload 4
comp kqs-q4_0-bp2 /work/s17/kqs --quantize q4_0 --preload 2
MKC=$H comp bench-1b-bf16-base $C/llama-3.2-1b.json
comp bench-1b-bf16-d $C/llama-3.2-1b.json
for p in 2 4; do comp bench-1b-bf16-pre$p $C/llama-3.2-1b.json --preload $p; done
MKC=$H comp bench-qwen-bf16-base $C/qwen3-0.6b.json
comp bench-qwen-bf16-d $C/qwen3-0.6b.json
comp bench-qwen-bf16-pre3 $C/qwen3-0.6b.json --preload 3
comp bench-smol-bf16-d $S
comp bench-smol-bf16-pre3 $S --preload 3
MKC=$H comp bench-1b-q4_0-i8-base $C/llama-3.2-1b.json --quantize q4_0 --int8-activations
comp bench-1b-q4_0-i8-d $C/llama-3.2-1b.json --quantize q4_0 --int8-activations
for p in 2 4; do comp bench-1b-q4_0-i8-pre$p $C/llama-3.2-1b.json --quantize q4_0 --int8-activations --preload $p; done
MKC=$H comp bench-1b-q4_0-base $C/llama-3.2-1b.json --quantize q4_0
comp bench-1b-q4_0-d $C/llama-3.2-1b.json --quantize q4_0
comp bench-1b-q4_0-pre2 $C/llama-3.2-1b.json --quantize q4_0 --preload 2
comp bench-smol-q4_1-i8-d $S --quantize q4_1 --int8-activations
comp bench-smol-q4_1-i8-pre4 $S --quantize q4_1 --int8-activations --preload 4
MKC=$H comp bench8-8b-bf16-base $C/llama-3.1-8b.json
comp bench8-8b-bf16-d $C/llama-3.1-8b.json
comp bench8-8b-bf16-pre3 $C/llama-3.1-8b.json --preload 3
MKC=$H comp bench8-8b-q4_0-i8-base $C/llama-3.1-8b.json --quantize q4_0 --int8-activations
comp bench8-8b-q4_0-i8-d $C/llama-3.1-8b.json --quantize q4_0 --int8-activations
comp bench8-8b-q4_0-i8-pre4 $C/llama-3.1-8b.json --quantize q4_0 --int8-activations --preload 4
comp bench8-8b-q8_0-i8-d $C/llama-3.1-8b.json --quantize q8_0 --int8-activations
comp bench8-8b-q8_0-i8-pre4 $C/llama-3.1-8b.json --quantize q8_0 --int8-activations --preload 4
