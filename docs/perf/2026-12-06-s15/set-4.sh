C=tests/fixtures/configs
comp gguf-smollm2 ~/.cache/mkc/models/SmolLM2-135M-Instruct.Q4_1.gguf
comp serve-1b $C/llama-3.2-1b.json
