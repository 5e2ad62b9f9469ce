C=tests/fixtures/configs
for q in q4_0 q4_1; do comp kq-$q /work/s15/kq --quantize $q; done
for q in q4_0 q4_1; do comp kqw-$q /work/s15/kqw --quantize $q; done
comp bench-1b-q4_0-a $C/llama-3.2-1b.json --quantize q4_0
MKC_BV=b comp bench-1b-q4_0-b $C/llama-3.2-1b.json --quantize q4_0
MKC_BV=c comp bench-1b-q4_0-c $C/llama-3.2-1b.json --quantize q4_0
comp bench-8b-q4_0-a $C/llama-3.1-8b.json --quantize q4_0
MKC_BV=b comp bench-8b-q4_0-b $C/llama-3.1-8b.json --quantize q4_0
