C=tests/fixtures/configs
Q="--quantize q4_0 --int8-activations"
N=/work/s19/share/mkc   # fa0cc21 (shared rounding)
MKC=$N comp b1q-new $C/llama-3.2-1b.json $Q
comp b1q-r $C/llama-3.2-1b.json $Q
MKC=$N comp b1q-new-m $C/llama-3.2-1b.json $Q --trace-mark input-rounded
comp b1q-r-m $C/llama-3.2-1b.json $Q --trace-mark input-rounded
