# Session 27's fourth call: `--split-k` with each thread group's parts stored in shared memory and summed over
# the groups after a barrier (calls 2 and 3 found the float atomic adds on shared memory, a compare-and-swap
# loop on sm_90, to take 4.9 us of the mlp task's 6.7), on every fixture, and SmolLM2, 1B and Qwen3 beside HEAD.
C=tests/fixtures/configs
S=../shared/configs/smollm2-135m.json
F=tests/fixtures
M=target/release/mkc
for f in llama-tiny qwen3-tiny mistral-tiny qwen2-tiny llama3-tiny; do
  MKC=$M comp fxk-$f $F/$f --split-k --short-steps 8 --long-steps 16
done
MKC=$M comp bs-h $S
MKC=$M comp bs-k $S --split-k
MKC=$M comp b1-h $C/llama-3.2-1b.json
MKC=$M comp b1-k $C/llama-3.2-1b.json --split-k
MKC=$M comp q3-h $C/qwen3-0.6b.json
MKC=$M comp q3-k $C/qwen3-0.6b.json --split-k
