# Session 30's call 2: position 2047 (the main and long programs) for what call 1 times at 128 (HEAD's defaults `h`,
# `--split-k mlp` `k` and `both` `b`; 1B `--split-k attention` `a`; Qwen3-0.6B `--k-row` `r`, with `--split-k both`
# `rb`), the 8B at 128 (`h`, `b`), and the peer on SmolLM2.
C=tests/fixtures/configs
S=../shared/configs/smollm2-135m.json
M=target/release/mkc
MKC=$M comp q3-h $C/qwen3-0.6b.json
MKC=$M comp q3-r $C/qwen3-0.6b.json --k-row
MKC=$M comp q3-rb $C/qwen3-0.6b.json --k-row --split-k both
MKC=$M comp b8-h $C/llama-3.1-8b.json
MKC=$M comp b8-b $C/llama-3.1-8b.json --split-k both
MKC=$M comp b1-a $C/llama-3.2-1b.json --split-k attention
for m in "bs:$S" "b1:$C/llama-3.2-1b.json"; do
  n=${m%%:*}; p=${m#*:}
  MKC=$M comp $n-h $p
  MKC=$M comp $n-k $p --split-k mlp
  MKC=$M comp $n-b $p --split-k both
done
