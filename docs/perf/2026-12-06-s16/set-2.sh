S=../shared/configs/smollm2-135m.json
comp bench-smolbf16-d $S
comp bench-smolbf16-pre1 $S --preload 1
comp bench-smolbf16-pre3 $S --preload 3
comp bench-smolbf16-l2p0 $S --l2-prefetch 0
comp bench-smolbf16-l2p256k $S --l2-prefetch 262144
comp bench-smolbf16-own $S --prefetch own
comp bench-smolbf16-rows2 $S --matvec-rows 2
comp bench-smolbf16-ls0 $S --last-signal-bytes 0
comp bench-smolbf16-ring $S --stream-slots 4
