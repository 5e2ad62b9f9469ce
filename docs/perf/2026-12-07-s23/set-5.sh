C=tests/fixtures/configs
S=../shared/configs/smollm2-135m.json
F=tests/fixtures
Q="--quantize q4_0 --int8-activations"
H=/work/s21/mkc-head N=/work/s21/mkc-new M=/work/s22/mkc-new2 P=/work/s23/mkc-w
for f in llama-tiny qwen3-tiny mistral-tiny qwen2-tiny llama3-tiny; do
  MKC=$P comp fxq-$f $F/$f --products paired --matvec-rounds fewest --matvec-rows-from 2 --short-steps 8 --long-steps 16
  MKC=$M comp fxa-$f $F/$f --short-steps 8 --long-steps 16
  MKC=$P comp fxp-$f $F/$f --preload 3 --products paired --matvec-rounds fewest
done
MKC=$H comp bs-h $S
MKC=$P comp bs-pp $S --products paired
MKC=$P comp bs-r $S --matvec-rounds fewest
MKC=$P comp bs-rp $S --matvec-rounds fewest --products paired
MKC=$P comp bs-rp3 $S --matvec-rounds fewest --products paired --preload 3
MKC=$M comp bs-a $S
MKC=$M comp bs-p3 $S --preload 3
MKC=$H comp b1-h $C/llama-3.2-1b.json
MKC=$P comp b1-pp $C/llama-3.2-1b.json --products paired
MKC=$M comp b1-a $C/llama-3.2-1b.json
MKC=$H comp b1q-h $C/llama-3.2-1b.json $Q
MKC=$M comp b1q-a $C/llama-3.2-1b.json $Q
MKC=$H comp q3-h $C/qwen3-0.6b.json
MKC=$P comp q3-pp $C/qwen3-0.6b.json --products paired
MKC=$M comp q3-a $C/qwen3-0.6b.json
MKC=$N comp b8q-n $C/llama-3.1-8b.json $Q
MKC=$H comp b8q-h $C/llama-3.1-8b.json $Q
MKC=$P comp bs-w $S --matvec-rows-from 8
MKC=$P comp bs-all $S --matvec-rows-from 8 --matvec-rounds fewest --products paired
MKC=$P comp b1-w $C/llama-3.2-1b.json --matvec-rows-from 8
MKC=$P comp q3-all $C/qwen3-0.6b.json --matvec-rows-from 8 --matvec-rounds fewest --products paired
MKC=$P comp b1-all $C/llama-3.2-1b.json --matvec-rows-from 8 --matvec-rounds fewest --products paired
