C=tests/fixtures/configs
S=../shared/configs/smollm2-135m.json
F=tests/fixtures
Q="--quantize q4_0 --int8-activations"
B=/work/s21/mkc-base H=/work/s21/mkc-head N=/work/s21/mkc-new M=/work/s22/mkc-new2
for f in llama-tiny qwen3-tiny mistral-tiny qwen2-tiny llama3-tiny; do
  MKC=$M comp fxa-$f $F/$f --short-steps 8 --long-steps 16
  MKC=$M comp fxp-$f $F/$f --preload 3
done
MKC=$H comp bs-h $S
MKC=$M comp bs-a $S
MKC=$H comp bs-p3o $S --preload 3
MKC=$M comp bs-p3 $S --preload 3
MKC=$M comp bs-p4 $S --preload 4
MKC=$H comp b1-h $C/llama-3.2-1b.json
MKC=$M comp b1-a $C/llama-3.2-1b.json
MKC=$M comp b1-p4 $C/llama-3.2-1b.json --preload 4
MKC=$H comp b1q-h $C/llama-3.2-1b.json $Q
MKC=$M comp b1q-a $C/llama-3.2-1b.json $Q
MKC=$H comp q3-h $C/qwen3-0.6b.json
MKC=$M comp q3-a $C/qwen3-0.6b.json
MKC=$M comp q3-p4 $C/qwen3-0.6b.json --preload 4
MKC=$B comp b8q-b $C/llama-3.1-8b.json $Q
MKC=$N comp b8q-n $C/llama-3.1-8b.json $Q
MKC=$H comp b8q-h $C/llama-3.1-8b.json $Q
