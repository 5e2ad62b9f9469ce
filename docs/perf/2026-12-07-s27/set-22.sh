# Session 27's third call, built from branch probe-share (share.patch; timing only, its sums are wrong):
# with MKC_PROBE_SHARE=8 a split-K task adds only every 8th quad of the sum (those with q mod 8 equal to its
# K start mod 8), so each line of the sum takes 8 times fewer reductions. `m4`: the trace's work slice from
# the end of op 4, so the slice is the matmul_acc.
S=../shared/configs/smollm2-135m.json
M=target/release/mkc
MKC=$M comp bs-h $S
MKC=$M comp bs-k $S --split-k
MKC=$M comp bs-k4 $S --split-k --trace-mark op-4
ENVS=MKC_PROBE_SHARE=8 MKC=$M comp bs-s8 $S --split-k
ENVS=MKC_PROBE_SHARE=8 MKC=$M comp bs-s8m4 $S --split-k --trace-mark op-4
