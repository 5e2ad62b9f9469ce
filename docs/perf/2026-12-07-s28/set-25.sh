# Session 28's first call: session 27's fix of `--split-k` (each thread group's parts stored in shared memory and
# summed over the groups after a barrier, instead of float atomic adds on shared memory), and the new
# `--split-k-attention` (the output projection's parts added onto the residual by attention's tasks), on every
# fixture (`fxk`, `fxa`: the latter with attention whole at every position), and SmolLM2, 1B, Qwen3 and 8B beside HEAD.
C=tests/fixtures/configs
S=../shared/configs/smollm2-135m.json
F=tests/fixtures
M=target/release/mkc
for f in llama-tiny qwen3-tiny mistral-tiny qwen2-tiny llama3-tiny; do
  MKC=$M comp fxk-$f $F/$f --split-k --short-steps 8 --long-steps 16
  MKC=$M comp fxa-$f $F/$f --split-k-attention --attention-parts 1
done
MKC=$M comp bs-h $S
MKC=$M comp bs-k $S --split-k
MKC=$M comp bs-a $S --split-k-attention --attention-parts 1
MKC=$M comp b1-h $C/llama-3.2-1b.json
MKC=$M comp b1-k $C/llama-3.2-1b.json --split-k
MKC=$M comp b1-a $C/llama-3.2-1b.json --split-k-attention --attention-parts 1
MKC=$M comp q3-h $C/qwen3-0.6b.json
MKC=$M comp q3-k $C/qwen3-0.6b.json --split-k
MKC=$M comp q3-a $C/qwen3-0.6b.json --split-k-attention --attention-parts 1
MKC=$M comp b8-h $C/llama-3.1-8b.json
MKC=$M comp b8-k $C/llama-3.1-8b.json --split-k
MKC=$M comp b8-a $C/llama-3.1-8b.json --split-k-attention --attention-parts 1
