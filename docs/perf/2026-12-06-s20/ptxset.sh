#!/usr/bin/env bash
# ptxset.sh MKC DIR: the default PTX of a set of models (fixtures, configs, quantized) into DIR.
set -e
M=$1; D=$2; mkdir -p $D; cd /work/main
C=tests/fixtures/configs; Q="--quantize q4_0 --int8-activations"
i=0
for a in "tests/fixtures/llama-tiny" "tests/fixtures/qwen3-tiny" "tests/fixtures/mistral-tiny" "tests/fixtures/qwen2-tiny" "tests/fixtures/llama3-tiny" \
  "$C/llama-3.2-1b.json" "$C/llama-3.1-8b.json" "$C/qwen3-0.6b.json" "../shared/configs/smollm2-135m.json" \
  "$C/llama-3.2-1b.json $Q" "$C/llama-3.1-8b.json $Q" "$C/llama-3.2-1b.json --quantize q4_0" "$C/llama-3.2-1b.json --attention-parts 4" "$C/llama-3.1-8b.json --attention-parts 16"; do
  i=$((i+1)); $M compile $a --emit=ptx -o $D/$i.ptx 2>/dev/null || echo "fail $a"
done
ls $D | wc -l
