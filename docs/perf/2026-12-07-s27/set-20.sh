# Session 27's first call, as `set-19.sh` (HEAD and `--split-k` with 16-byte reductions, every fixture,
# SmolLM2, 1B and Qwen3), and the same with `--preload-split-k 4` (the first round of each thread's
# slice of the down weight copied into shared memory before the wait).
source "$(dirname "${BASH_SOURCE[0]}")/set-19.sh"
for f in llama-tiny qwen3-tiny mistral-tiny qwen2-tiny llama3-tiny; do
  MKC=$M comp fxp-$f $F/$f --split-k --preload-split-k 4 --short-steps 8 --long-steps 16
done
MKC=$M comp bs-p $S --split-k --preload-split-k 4
MKC=$M comp b1-p $C/llama-3.2-1b.json --split-k --preload-split-k 4
MKC=$M comp q3-p $C/qwen3-0.6b.json --split-k --preload-split-k 4
