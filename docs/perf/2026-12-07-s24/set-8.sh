# Session 24's set 8: HEAD's compiler, variants by flag: the step's scalars before the wait (E), later ops' small inputs into L1 (L).
C=tests/fixtures/configs
S=../shared/configs/smollm2-135m.json
F=tests/fixtures
M=target/release/mkc
E="--step-inputs before-wait"
L="--later-inputs l1"
Q="--quantize q4_0 --int8-activations"
for f in llama-tiny qwen3-tiny mistral-tiny qwen2-tiny llama3-tiny; do
  MKC=$M comp fxl-$f $F/$f $E $L --short-steps 8 --long-steps 16
done
MKC=$M comp bs-h $S
MKC=$M comp bs-e $S $E
MKC=$M comp bs-el $S $E $L
MKC=$M comp bs-pel $S $E $L --products paired
MKC=$M comp q3-e $C/qwen3-0.6b.json $E
MKC=$M comp q3-el $C/qwen3-0.6b.json $E $L
MKC=$M comp b1-e $C/llama-3.2-1b.json $E
MKC=$M comp b1-el $C/llama-3.2-1b.json $E $L
MKC=$M comp b1q-e $C/llama-3.2-1b.json $Q $E
MKC=$M comp b1q-el $C/llama-3.2-1b.json $Q $E $L
MKC=$M comp bs-m1 $S $E $L --trace-mark op-1
