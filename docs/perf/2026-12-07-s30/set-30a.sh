# Session 30's call 1: the GPU checks first (qwen3-tiny `--k-row`: `fxr` three programs, `fxo` KV-group tiles, the
# online pass, `fxp` with `--prefetch-light-inputs`; `--split-k both`: `fxb` three programs on llama-tiny and
# qwen3-tiny (there with `--k-row`), `fxc` llama-tiny attention whole), then position 128: SmolLM2 and 1B with
# HEAD's defaults (`h`), `--split-k attention` (`a`), `mlp` (`k`), `both` (`b`, new: three phases a layer);
# Qwen3-0.6B with `--k-row` (`r`), and with it `--split-k mlp` (`rk`) or `both` (`rb`).
C=tests/fixtures/configs
S=../shared/configs/smollm2-135m.json
F=tests/fixtures
M=target/release/mkc
MKC=$M comp fxr-qwen3-tiny $F/qwen3-tiny --k-row --short-steps 8 --long-steps 16
MKC=$M comp fxo-qwen3-tiny $F/qwen3-tiny --k-row --attention-parts 16 --sms 32 --short-steps 0
MKC=$M comp fxp-qwen3-tiny $F/qwen3-tiny --k-row --prefetch-light-inputs --short-steps 8 --long-steps 16
MKC=$M comp fxb-llama-tiny $F/llama-tiny --split-k both --short-steps 8 --long-steps 16
MKC=$M comp fxb-qwen3-tiny $F/qwen3-tiny --split-k both --k-row --bandwidth 100 --short-steps 8 --long-steps 16
MKC=$M comp fxc-llama-tiny $F/llama-tiny --split-k both --attention-parts 1
MKC=$M comp q3-h $C/qwen3-0.6b.json
MKC=$M comp q3-r $C/qwen3-0.6b.json --k-row
MKC=$M comp q3-rk $C/qwen3-0.6b.json --k-row --split-k mlp
MKC=$M comp q3-rb $C/qwen3-0.6b.json --k-row --split-k both
for m in "bs:$S" "b1:$C/llama-3.2-1b.json"; do
  n=${m%%:*}; p=${m#*:}
  MKC=$M comp $n-h $p
  MKC=$M comp $n-a $p --split-k attention
  MKC=$M comp $n-k $p --split-k mlp
  MKC=$M comp $n-b $p --split-k both
done
