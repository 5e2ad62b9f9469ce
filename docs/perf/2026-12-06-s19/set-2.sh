C=tests/fixtures/configs
S=../shared/configs/smollm2-135m.json
F=tests/fixtures
Q="--quantize q4_0 --int8-activations"
comp b1q-new $C/llama-3.2-1b.json $Q
MKC_KVPF=v comp b1q-v $C/llama-3.2-1b.json $Q
comp b1q-long $C/llama-3.2-1b.json $Q --short-steps 0 --long-steps 1
comp b1q-main $C/llama-3.2-1b.json $Q --short-steps 0 --long-steps 0
comp b1-d $C/llama-3.2-1b.json
MKC_KVPF=v comp b1-v $C/llama-3.2-1b.json
comp bs-d $S
MKC_KVPF=v comp bs-v $S
comp b8q-new $C/llama-3.1-8b.json $Q
MKC_KVPF=v comp b8q-v $C/llama-3.1-8b.json $Q
for f in llama-tiny qwen3-tiny; do MKC_KVPF=v comp fx-$f $F/$f --short-steps 8 --long-steps 16; done
