# Session 28's first call: session 27's fix of `--split-k` (each thread group's parts stored in shared memory and
# summed over the groups after a barrier, instead of float atomic adds on shared memory) on every fixture, and
# SmolLM2, 1B, Qwen3 and 8B beside HEAD; `p` adds `--preload-split-k 4`.
C=tests/fixtures/configs
S=../shared/configs/smollm2-135m.json
F=tests/fixtures
M=target/release/mkc
for f in llama-tiny qwen3-tiny mistral-tiny qwen2-tiny llama3-tiny; do
  MKC=$M comp fxk-$f $F/$f --split-k --short-steps 8 --long-steps 16
done
MKC=$M comp bs-h $S
MKC=$M comp bs-k $S --split-k
MKC=$M comp bs-p $S --split-k --preload-split-k 4
MKC=$M comp b1-h $C/llama-3.2-1b.json
MKC=$M comp b1-k $C/llama-3.2-1b.json --split-k
MKC=$M comp q3-h $C/qwen3-0.6b.json
MKC=$M comp q3-k $C/qwen3-0.6b.json --split-k
MKC=$M comp b8-h $C/llama-3.1-8b.json
MKC=$M comp b8-k $C/llama-3.1-8b.json --split-k
