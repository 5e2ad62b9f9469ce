# Session 26's third call: HEAD's defaults after call 2 (constant extents, `--preload 3`, light tiles of 1024
# bytes, the combine's memory reuse) on every fixture from both frontends, and timed on every row beside the
# defaults of call 2's start (`--preload 0 --min-light-tile-bytes 16384`) on the same machine.
C=tests/fixtures/configs
S=../shared/configs/smollm2-135m.json
F=tests/fixtures
M=target/release/mkc
for f in llama-tiny qwen3-tiny mistral-tiny qwen2-tiny llama3-tiny; do
  MKC=$M comp fxh-$f $F/$f --short-steps 8 --long-steps 16
  MKC=$M comp fxn-$f $F/$f/model.onnx
done
MKC=$M comp bs-h $S
MKC=$M comp bs-o $S --preload 0 --min-light-tile-bytes 16384
MKC=$M comp b1-h $C/llama-3.2-1b.json
MKC=$M comp q3-h $C/qwen3-0.6b.json
MKC=$M comp q3-o $C/qwen3-0.6b.json --preload 0 --min-light-tile-bytes 16384
MKC=$M comp b8-h $C/llama-3.1-8b.json
MKC=$M comp b1q-h $C/llama-3.2-1b.json --quantize q4_0 --int8-activations
