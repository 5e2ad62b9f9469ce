C=tests/fixtures/configs
S=../shared/configs/smollm2-135m.json
F=tests/fixtures
Q="--quantize q4_0 --int8-activations"
A="MKC_ATT_WS=1 MKC_ATT_VL1=1 MKC_ATT_RS=1"
comp b1q-d $C/llama-3.2-1b.json $Q
ENVS="MKC_ATT_WS=1" comp b1q-ws $C/llama-3.2-1b.json $Q
ENVS="MKC_ATT_VL1=1" comp b1q-vl $C/llama-3.2-1b.json $Q
ENVS="MKC_ATT_RS=1" comp b1q-rs $C/llama-3.2-1b.json $Q
ENVS="MKC_ATT_WS=1 MKC_ATT_VL1=1" comp b1q-wv $C/llama-3.2-1b.json $Q
ENVS="$A" comp b1q-all $C/llama-3.2-1b.json $Q
comp b1-d $C/llama-3.2-1b.json
ENVS="$A" comp b1-all $C/llama-3.2-1b.json
comp bs-d $S
ENVS="$A" comp bs-all $S
comp b8q-d $C/llama-3.1-8b.json $Q
ENVS="$A" comp b8q-all $C/llama-3.1-8b.json $Q
for f in llama-tiny qwen3-tiny mistral-tiny qwen2-tiny llama3-tiny; do ENVS="$A" comp fx-$f $F/$f --short-steps 8 --long-steps 16; done
ENVS="MKC_PF_SKIP_KIND=attention" comp b1q-npa $C/llama-3.2-1b.json $Q
ENVS="MKC_PF_SKIP_KIND=attention" comp b8q-npa $C/llama-3.1-8b.json $Q
ENVS="MKC_PF_LATE=1" comp b1q-late $C/llama-3.2-1b.json $Q
ENVS="MKC_PF_LATE=1" comp b8q-late $C/llama-3.1-8b.json $Q
comp b1-p3 $C/llama-3.2-1b.json --preload 3
comp bs-p3 $S --preload 3
ENVS="$A" comp b1-allp3 $C/llama-3.2-1b.json --preload 3
ENVS="$A" comp bs-allp3 $S --preload 3
