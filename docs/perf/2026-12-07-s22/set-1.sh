C=tests/fixtures/configs
S=../shared/configs/smollm2-135m.json
F=tests/fixtures
Q="--quantize q4_0 --int8-activations"
B=/work/s21/mkc-base N=/work/s21/mkc-new V=/work/s21/mkc-var
RS="MKC_ATT_RS=1" WR="MKC_ATT_WS=1 MKC_ATT_RS=1"
for f in llama-tiny qwen3-tiny mistral-tiny qwen2-tiny llama3-tiny; do
  MKC=/work/s21/mkc-head comp fxn-$f $F/$f --short-steps 8 --long-steps 16
  MKC=$V ENVS="$WR" comp fxr-$f $F/$f --short-steps 8 --long-steps 16
done
MKC=$B comp b1q-b $C/llama-3.2-1b.json $Q
MKC=$N comp b1q-n $C/llama-3.2-1b.json $Q
MKC=$V ENVS="$RS" comp b1q-rs $C/llama-3.2-1b.json $Q
MKC=$V ENVS="$WR" comp b1q-wr $C/llama-3.2-1b.json $Q
MKC=$B comp b1-b $C/llama-3.2-1b.json
MKC=$N comp b1-n $C/llama-3.2-1b.json
MKC=$V ENVS="$RS" comp b1-rs $C/llama-3.2-1b.json
MKC=$V ENVS="$WR" comp b1-wr $C/llama-3.2-1b.json
MKC=$B comp bs-b $S
MKC=$N comp bs-n $S
MKC=$V ENVS="$RS" comp bs-rs $S
MKC=$V ENVS="$WR" comp bs-wr $S
MKC=$N comp bs-p3 $S --preload 3
MKC=$V ENVS="$RS" comp bs-rsp3 $S --preload 3
MKC=$B comp b8q-b $C/llama-3.1-8b.json $Q
MKC=$N comp b8q-n $C/llama-3.1-8b.json $Q
MKC=$V ENVS="$RS" comp b8q-rs $C/llama-3.1-8b.json $Q
M=/work/s22/mkc-mark
for k in 0 1 2 3; do MKC=$M comp bs-m$k $S --trace-mark op-$k; done
MKC=$M comp bs-as $S --trace-mark attention-scores
MKC=$M comp bs-at $S --trace-mark attention-stats
MKC=$M comp bs-h $S
MKC=$M comp b1-h $C/llama-3.2-1b.json
for k in 0 1; do MKC=$M comp b1-m$k $C/llama-3.2-1b.json --trace-mark op-$k; done
