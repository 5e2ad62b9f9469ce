C=tests/fixtures/configs
for m in kq kqw kqs; do for q in q8_0 q4_0 q4_1; do comp $m-$q-i8 /work/s16/$m --quantize $q --int8-activations; done; done
comp bench-1b-bf16 $C/llama-3.2-1b.json
for q in q4_0 q8_0; do
  comp bench-1b-$q $C/llama-3.2-1b.json --quantize $q
  comp bench-1b-$q-i8 $C/llama-3.2-1b.json --quantize $q --int8-activations
  comp bench8-8b-$q-i8 $C/llama-3.1-8b.json --quantize $q --int8-activations
done
comp bench8-8b-q4_0 $C/llama-3.1-8b.json --quantize q4_0
comp bench-smol-q4_1 ../shared/configs/smollm2-135m.json --quantize q4_1
comp bench-smol-q4_1-i8 ../shared/configs/smollm2-135m.json --quantize q4_1 --int8-activations
