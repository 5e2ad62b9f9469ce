C=tests/fixtures/configs
S=../shared/configs/smollm2-135m.json
Q="--quantize q4_0 --int8-activations"
comp b8q-d $C/llama-3.1-8b.json $Q
for m in a1 a2 r1; do MKC_MARK=$m comp b8q-$m $C/llama-3.1-8b.json $Q; done
MKC_INFLIGHT=4 comp b8q-i4 $C/llama-3.1-8b.json $Q
MKC_INFLIGHT=8 comp b8q-i8 $C/llama-3.1-8b.json $Q
comp b8q-fen $C/llama-3.1-8b.json $Q --event-order fences
comp b8q8-d $C/llama-3.1-8b.json --quantize q8_0 --int8-activations
MKC_INFLIGHT=8 comp b8q8-i8 $C/llama-3.1-8b.json --quantize q8_0 --int8-activations
comp b1q-d $C/llama-3.2-1b.json $Q
MKC_MARK=r1 comp b1q-r1 $C/llama-3.2-1b.json $Q
MKC_INFLIGHT=8 comp b1q-i8 $C/llama-3.2-1b.json $Q
comp b1-d $C/llama-3.2-1b.json
for m in a1 a2; do MKC_MARK=$m comp b1-$m $C/llama-3.2-1b.json; done
comp b1-al1 $C/llama-3.2-1b.json --attention-lanes 1
comp b1-al4 $C/llama-3.2-1b.json --attention-lanes 4
comp b1-fen $C/llama-3.2-1b.json --event-order fences
comp bs-d $S
MKC_MARK=a1 comp bs-a1 $S
for m in kqw kqd; do for v in d i8; do
  if [ $v = i8 ]; then export MKC_INFLIGHT=8; else unset MKC_INFLIGHT; fi
  comp kc-$m-$v /work/s18/$m $Q
done; done; unset MKC_INFLIGHT
MKC_INFLIGHT=4 comp kc-kqd-i4 /work/s18/kqd $Q
