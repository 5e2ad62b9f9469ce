# Session 30's call 2 (built by session 29): position 2047 (the main and long programs) with HEAD's defaults (`h`),
# `--k-row` on Qwen3-0.6B (`r`, `rk` with `--split-k mlp`), and session 28's untimed splits (`--split-k attention`
# `a`, `--split-k mlp` `k`) on SmolLM2, 1B and the 8B; the peer on SmolLM2. (Split from set 29a: each call carries
# less than 64 MiB with the 42 MiB checkout.)
C=tests/fixtures/configs
S=../shared/configs/smollm2-135m.json
M=target/release/mkc
MKC=$M comp q3-h $C/qwen3-0.6b.json
MKC=$M comp q3-r $C/qwen3-0.6b.json --k-row
MKC=$M comp q3-rk $C/qwen3-0.6b.json --k-row --split-k mlp
for m in "bs:$S" "b1:$C/llama-3.2-1b.json" "b8:$C/llama-3.1-8b.json"; do
  n=${m%%:*}; p=${m#*:}
  MKC=$M comp $n-h $p
  MKC=$M comp $n-a $p --split-k attention
  [ $n = b8 ] || MKC=$M comp $n-k $p --split-k mlp
done
