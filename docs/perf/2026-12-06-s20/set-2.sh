C=tests/fixtures/configs
S=../shared/configs/smollm2-135m.json
Q="--quantize q4_0 --int8-activations"
W="MKC_ATT_WS=1 MKC_ATT_RS=1"
comp b1q-d $C/llama-3.2-1b.json $Q
ENVS="$W" comp b1q-wr $C/llama-3.2-1b.json $Q
ENVS="MKC_ATT_RS=1" comp b1q-rs $C/llama-3.2-1b.json $Q
comp b1-d $C/llama-3.2-1b.json
ENVS="$W" comp b1-wr $C/llama-3.2-1b.json
comp bs-d $S
ENVS="$W" comp bs-wr $S
comp bs-p3 $S --preload 3
ENVS="$W" comp bs-wrp3 $S --preload 3
comp b8q-d $C/llama-3.1-8b.json $Q
ENVS="$W" comp b8q-wr $C/llama-3.1-8b.json $Q
