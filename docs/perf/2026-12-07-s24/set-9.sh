# Session 24's set 9: HEAD's compiler, variants by flag: E the step's scalars before the wait, O the thread's number per code (loaded).
C=tests/fixtures/configs
S=../shared/configs/smollm2-135m.json
F=tests/fixtures
M=target/release/mkc
E="--step-inputs before-wait"
O="--thread-number loaded"
Q="--quantize q4_0 --int8-activations"
for f in llama-tiny qwen3-tiny mistral-tiny qwen2-tiny llama3-tiny; do
  MKC=$M comp fxo-$f $F/$f $E $O --short-steps 8 --long-steps 16
done
MKC=$M comp bs-e $S $E
MKC=$M comp bs-eo $S $E $O
MKC=$M comp bs-peo $S $E $O --products paired
MKC=$M comp q3-e $C/qwen3-0.6b.json $E
MKC=$M comp q3-eo $C/qwen3-0.6b.json $E $O
MKC=$M comp q3-peo $C/qwen3-0.6b.json $E $O --products paired
MKC=$M comp b1-e $C/llama-3.2-1b.json $E
MKC=$M comp b1-eo $C/llama-3.2-1b.json $E $O
MKC=$M comp b1-peo $C/llama-3.2-1b.json $E $O --products paired
MKC=$M comp b1q-e $C/llama-3.2-1b.json $Q $E
MKC=$M comp b1q-eo $C/llama-3.2-1b.json $Q $E $O
MKC=$M comp b8-e $C/llama-3.1-8b.json $E
MKC=$M comp b8-eo $C/llama-3.1-8b.json $E $O
MKC=$M comp bs-ms $S $E $O --trace-mark attention-scores
