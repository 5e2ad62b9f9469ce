# Session 24's set 7: HEAD's compiler (target/release/mkc), variants by flag.
C=tests/fixtures/configs
S=../shared/configs/smollm2-135m.json
F=tests/fixtures
M=target/release/mkc
E="--step-inputs before-wait"
Q="--quantize q4_0 --int8-activations"
for f in llama-tiny qwen3-tiny mistral-tiny qwen2-tiny llama3-tiny; do
  MKC=$M comp fxe-$f $F/$f $E --short-steps 8 --long-steps 16
done
MKC=$M comp bs-h $S
MKC=$M comp bs-e $S $E
MKC=$M comp bs-pe $S $E --products paired
MKC=$M comp q3-h $C/qwen3-0.6b.json
MKC=$M comp q3-e $C/qwen3-0.6b.json $E
MKC=$M comp b1-h $C/llama-3.2-1b.json
MKC=$M comp b1-e $C/llama-3.2-1b.json $E
MKC=$M comp b1q-h $C/llama-3.2-1b.json $Q
MKC=$M comp b1q-e $C/llama-3.2-1b.json $Q $E
MKC=$M comp bs-m0 $S $E --trace-mark op-0
MKC=$M comp bs-m1 $S $E --trace-mark op-1
MKC=$M comp bs-ms $S $E --trace-mark attention-scores
MKC=$M comp bs-mt $S $E --trace-mark attention-stats
