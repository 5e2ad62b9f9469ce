C=tests/fixtures/configs
comp tiny-2048 tests/fixtures/llama-tiny --ctx 2048
comp bench-1b-q4_0 $C/llama-3.2-1b.json --quantize q4_0
comp bench-1b-bf16 $C/llama-3.2-1b.json
