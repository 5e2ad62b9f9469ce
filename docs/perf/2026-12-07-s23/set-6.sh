# Session 24's first call: everything from HEAD's compiler (target/release/mkc), variants by flag.
C=tests/fixtures/configs
S=../shared/configs/smollm2-135m.json
F=tests/fixtures
M=target/release/mkc
for f in llama-tiny qwen3-tiny mistral-tiny qwen2-tiny llama3-tiny; do
  MKC=$M comp fxh-$f $F/$f --short-steps 8 --long-steps 16
  MKC=$M comp fxp-$f $F/$f --preload 3 --products paired
done
MKC=$M comp bs-h $S
MKC=$M comp bs-w $S --matvec-rounds whole
MKC=$M comp bs-pp $S --products paired
MKC=$M comp bs-p3 $S --preload 3
MKC=$M comp bs-pp3 $S --products paired --preload 3
MKC=$M comp b1-h $C/llama-3.2-1b.json
MKC=$M comp b1-pp $C/llama-3.2-1b.json --products paired
MKC=$M comp q3-h $C/qwen3-0.6b.json
MKC=$M comp q3-pp $C/qwen3-0.6b.json --products paired
