C=tests/fixtures/configs
S=../shared/configs/smollm2-135m.json
H=/work/s17/mkc-head
MKC=$H comp kqw-q8_0-i8-base /work/s17/kqw --quantize q8_0 --int8-activations
comp kqw-q8_0-i8-d /work/s17/kqw --quantize q8_0 --int8-activations
comp kqw-q8_0-i8-p4 /work/s17/kqw --quantize q8_0 --int8-activations --preload 4
for f in tests/fixtures/*/fixture.json; do d=$(dirname $f); n=$(basename $d)
  comp fix-pre3-$n-hf $d --preload 3
  comp fix-d-$n-onnx $d/model.onnx
done
MKC=$H comp bench-smol-q4_1-i8-base $S --quantize q4_1 --int8-activations
comp bench-smol-q4_1-i8-d $S --quantize q4_1 --int8-activations
for p in 3 4; do comp bench-smol-q4_1-i8-pre$p $S --quantize q4_1 --int8-activations --preload $p; done
comp bench1-1b-bf16-d $C/llama-3.2-1b.json
comp bench1-1b-bf16-pre3 $C/llama-3.2-1b.json --preload 3
comp bench1-smol-bf16-pre3 $S --preload 3
comp bench1-smol-bf16-pre4 $S --preload 4
comp bench1-1b-q4_0-i8-pre3 $C/llama-3.2-1b.json --quantize q4_0 --int8-activations --preload 3
comp bench1-1b-q4_0-i8-pre4 $C/llama-3.2-1b.json --quantize q4_0 --int8-activations --preload 4
