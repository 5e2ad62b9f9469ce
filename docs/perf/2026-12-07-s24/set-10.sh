# Session 24's set 10: HEAD's compiler; the new defaults (h) against the old ones by flag (o).
C=tests/fixtures/configs
S=../shared/configs/smollm2-135m.json
F=tests/fixtures
M=target/release/mkc
OLD="--step-inputs after-wait --thread-number mov --products apart"
Q="--quantize q4_0 --int8-activations"
for f in llama-tiny qwen3-tiny mistral-tiny qwen2-tiny llama3-tiny; do
  MKC=$M comp fxh-$f $F/$f --short-steps 8 --long-steps 16
  MKC=$M comp fxn-$f $F/$f/model.onnx
done
MKC=$M comp bs-h $S
MKC=$M comp bs-o $S $OLD
MKC=$M comp b1-h $C/llama-3.2-1b.json
MKC=$M comp b1-o $C/llama-3.2-1b.json $OLD
MKC=$M comp q3-h $C/qwen3-0.6b.json
MKC=$M comp q3-o $C/qwen3-0.6b.json $OLD
MKC=$M comp b8-h $C/llama-3.1-8b.json
MKC=$M comp b8-o $C/llama-3.1-8b.json $OLD
MKC=$M comp b1q-h $C/llama-3.2-1b.json $Q
MKC=$M comp b1q-o $C/llama-3.2-1b.json $Q $OLD
MKC=$M comp b8q-h $C/llama-3.1-8b.json $Q
MKC=$M comp b8q-o $C/llama-3.1-8b.json $Q $OLD
