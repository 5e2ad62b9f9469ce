# Session 25's second call (built, not run): the 8B rows and 1B q4_0 int8 (set 13 with them is past one call's 64 MiB).
C=tests/fixtures/configs
M=target/release/mkc
MKC=$M comp b8-h $C/llama-3.1-8b.json
MKC=$M comp b8-c $C/llama-3.1-8b.json --tile-extents constant
MKC=$M comp b8-x $C/llama-3.1-8b.json --tile-extents split
MKC=$M comp b8q-h $C/llama-3.1-8b.json --quantize q4_0 --int8-activations
MKC=$M comp b8q-c $C/llama-3.1-8b.json --quantize q4_0 --int8-activations --tile-extents constant
MKC=$M comp b8q-x $C/llama-3.1-8b.json --quantize q4_0 --int8-activations --tile-extents split
MKC=$M comp b1q-h $C/llama-3.2-1b.json --quantize q4_0 --int8-activations
MKC=$M comp b1q-c $C/llama-3.2-1b.json --quantize q4_0 --int8-activations --tile-extents constant
MKC=$M comp b1q-x $C/llama-3.2-1b.json --quantize q4_0 --int8-activations --tile-extents split
