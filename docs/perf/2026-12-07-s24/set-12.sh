# The next session's first call (not run): HEAD's compiler; the leads of call 6 checked on the fixtures, and the
# qkv codes' rope and cache write timed by trace marks (op-3: after K's rope, before its write into the cache).
C=tests/fixtures/configs
S=../shared/configs/smollm2-135m.json
F=tests/fixtures
M=target/release/mkc
for f in llama-tiny qwen3-tiny mistral-tiny qwen2-tiny llama3-tiny; do
  MKC=$M comp fxp3-$f $F/$f --preload 3 --short-steps 8 --long-steps 16
  MKC=$M comp fxu8-$f $F/$f --matvec-unroll 8 --short-steps 8 --long-steps 16
done
MKC=$M comp bs-h $S
MKC=$M comp bs-p3 $S --preload 3
MKC=$M comp bs-u8 $S --matvec-unroll 8
MKC=$M comp bs-p3u8 $S --preload 3 --matvec-unroll 8
MKC=$M comp bs-m2 $S --trace-mark op-2
MKC=$M comp bs-m3 $S --trace-mark op-3
MKC=$M comp b1-h $C/llama-3.2-1b.json
MKC=$M comp b1-p4 $C/llama-3.2-1b.json --preload 4
MKC=$M comp q3-h $C/qwen3-0.6b.json
MKC=$M comp q3-p4 $C/qwen3-0.6b.json --preload 4
