C=tests/fixtures/configs
S=../shared/configs/smollm2-135m.json
F=tests/fixtures
Q="--quantize q4_0 --int8-activations"
O=/work/s19/old/mkc
# old compiler (c581e75) beside the new
MKC=$O comp b1q-old $C/llama-3.2-1b.json $Q
MKC=$O comp b8q-old $C/llama-3.1-8b.json $Q
comp b1q-new $C/llama-3.2-1b.json $Q
comp b1q-kv $C/llama-3.2-1b.json $Q --kv-prefetch true
comp b1q-bf $C/llama-3.2-1b.json $Q --compute bf16
comp b1q-kvbf $C/llama-3.2-1b.json $Q --compute bf16 --kv-prefetch true
comp b8q-new $C/llama-3.1-8b.json $Q
comp b8q-kv $C/llama-3.1-8b.json $Q --kv-prefetch true
comp b1-d $C/llama-3.2-1b.json
comp b1-kv $C/llama-3.2-1b.json --kv-prefetch true
comp bs-d $S
comp bs-kv $S --kv-prefetch true
for m in kqw kqd; do comp kc-$m /work/s18/$m $Q; done
for f in llama-tiny qwen3-tiny mistral-tiny qwen2-tiny llama3-tiny; do comp fx-$f $F/$f --kv-prefetch true --short-steps 8 --long-steps 16; done
