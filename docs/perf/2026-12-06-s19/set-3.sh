C=tests/fixtures/configs
Q="--quantize q4_0 --int8-activations"
Q8="--quantize q8_0 --int8-activations"
O=/work/s19/old/mkc     # c581e75 (session 18's default)
N=/work/s19/share/mkc   # fa0cc21 (shared rounding)
MKC=$O comp b1q-old $C/llama-3.2-1b.json $Q
MKC=$N comp b1q-new $C/llama-3.2-1b.json $Q
comp b1q-r $C/llama-3.2-1b.json $Q
MKC=$O comp b8q-old $C/llama-3.1-8b.json $Q
MKC=$N comp b8q-new $C/llama-3.1-8b.json $Q
comp b8q-r $C/llama-3.1-8b.json $Q
MKC=$O comp b88-old $C/llama-3.1-8b.json $Q8
comp b88-r $C/llama-3.1-8b.json $Q8
for m in kqw kqd; do comp kc-$m /work/s18/$m $Q; done
