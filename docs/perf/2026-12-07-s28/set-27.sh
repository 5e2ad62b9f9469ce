# Session 28's call (set 26 less 8B split-K, plus leads the cost model ranks): `--split-k` (session 27's fix),
# `--split-k-attention` (new: the output projection added onto the residual by attention's or the combine's
# tasks), on every fixture (`fxk`; `fxa` attention whole; `fxc` in parts on the main program), beside HEAD;
# `m`: `--min-tile-bytes 1024`; `ap`: `--split-k-attention --preload-split-k 4`.
C=tests/fixtures/configs
S=../shared/configs/smollm2-135m.json
F=tests/fixtures
M=target/release/mkc
for f in llama-tiny qwen3-tiny mistral-tiny qwen2-tiny llama3-tiny; do
  MKC=$M comp fxk-$f $F/$f --split-k --short-steps 8 --long-steps 16
  MKC=$M comp fxa-$f $F/$f --split-k-attention --attention-parts 1
  MKC=$M comp fxc-$f $F/$f --split-k-attention --short-steps 8 --long-steps 16
done
MKC=$M comp bs-h $S
MKC=$M comp bs-k $S --split-k
MKC=$M comp bs-a $S --split-k-attention
MKC=$M comp bs-ap $S --split-k-attention --preload-split-k 4
MKC=$M comp bs-m $S --min-tile-bytes 1024
MKC=$M comp bs-am $S --split-k-attention --min-tile-bytes 1024
MKC=$M comp b1-h $C/llama-3.2-1b.json
MKC=$M comp b1-k $C/llama-3.2-1b.json --split-k
MKC=$M comp b1-a $C/llama-3.2-1b.json --split-k-attention
MKC=$M comp q3-h $C/qwen3-0.6b.json
MKC=$M comp q3-k $C/qwen3-0.6b.json --split-k
MKC=$M comp q3-a $C/qwen3-0.6b.json --split-k-attention
MKC=$M comp b8-h $C/llama-3.1-8b.json
MKC=$M comp b8-a $C/llama-3.1-8b.json --split-k-attention
