# Session 27's first call: session 26's `set-18.sh` (`--split-k` with 16-byte reductions onto the sum, PTX 8.1,
# on every fixture; SmolLM2 and 1B with it beside HEAD), and Qwen3-0.6B with and without it.
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
