# Session 24's set 11: HEAD's compiler (the new defaults, h) and flag-only leads now that registers are free.
C=tests/fixtures/configs
S=../shared/configs/smollm2-135m.json
M=target/release/mkc
MKC=$M comp bs-h $S
MKC=$M comp bs-p3 $S --preload 3
MKC=$M comp bs-u8 $S --matvec-unroll 8
MKC=$M comp b1-h $C/llama-3.2-1b.json
MKC=$M comp b1-p2 $C/llama-3.2-1b.json --preload 2
MKC=$M comp b1-u8 $C/llama-3.2-1b.json --matvec-unroll 8
MKC=$M comp q3-h $C/qwen3-0.6b.json
MKC=$M comp q3-p2 $C/qwen3-0.6b.json --preload 2
MKC=$M comp q3-u8 $C/qwen3-0.6b.json --matvec-unroll 8
