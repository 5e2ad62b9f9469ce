# Session 25's call (built, not run: no device time this session). `--tile-extents constant` checked on the
# fixtures (GPU against transformers, and the GPU's own argmax tokens) and timed beside HEAD's defaults on every
# row; session 24's leads (call 6) checked and timed; K's rope and cache write timed by trace marks; the wait's
# sleep between polls (--poll-sleep, 32 ns) at 0 and 128.
C=tests/fixtures/configs
S=../shared/configs/smollm2-135m.json
F=tests/fixtures
M=target/release/mkc
for f in llama-tiny qwen3-tiny mistral-tiny qwen2-tiny llama3-tiny; do
  MKC=$M comp fxc-$f $F/$f --tile-extents constant --short-steps 8 --long-steps 16
  MKC=$M comp fxx-$f $F/$f --tile-extents split --short-steps 8 --long-steps 16
  MKC=$M comp fxp3-$f $F/$f --preload 3 --short-steps 8 --long-steps 16
  MKC=$M comp fxs0-$f $F/$f --poll-sleep 0 --short-steps 8 --long-steps 16
done
MKC=$M comp bs-h $S
MKC=$M comp bs-c $S --tile-extents constant
MKC=$M comp bs-x $S --tile-extents split
MKC=$M comp bs-p3 $S --preload 3
MKC=$M comp bs-u8 $S --matvec-unroll 8
MKC=$M comp bs-cp3 $S --tile-extents constant --preload 3
MKC=$M comp bs-m3 $S --trace-mark op-3
MKC=$M comp bs-cm3 $S --tile-extents constant --trace-mark op-3
MKC=$M comp bs-s0 $S --poll-sleep 0
MKC=$M comp bs-s128 $S --poll-sleep 128
MKC=$M comp b1-h $C/llama-3.2-1b.json
MKC=$M comp b1-s0 $C/llama-3.2-1b.json --poll-sleep 0
MKC=$M comp b1-c $C/llama-3.2-1b.json --tile-extents constant
MKC=$M comp b1-x $C/llama-3.2-1b.json --tile-extents split
MKC=$M comp q3-h $C/qwen3-0.6b.json
MKC=$M comp q3-c $C/qwen3-0.6b.json --tile-extents constant
MKC=$M comp q3-x $C/qwen3-0.6b.json --tile-extents split
MKC=$M comp q3-m1k $C/qwen3-0.6b.json --min-tile-bytes 1024
