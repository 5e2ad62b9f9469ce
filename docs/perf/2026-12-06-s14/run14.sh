#!/usr/bin/env bash
# Session 14's device calls (H100): quantized weights on the GPU.
#   call1: unpack; GPU checks of the quantized tiny fixtures (against the simulator) and a
#          bf16 one; every bench artifact at position 128 (bf16 and quantized), the peer on
#          smollm2-135m.
#   call2: join the SmolLM2 GGUF from .m1 + .m2 (sha256 checked); the GPU check against
#          transformers' reference over 61 positions; generation from the GGUF's prompt ids;
#          the GGUF artifact's bench.
set -uo pipefail
cd "$(dirname "$0")"
out=${OUT:-out}; mkdir -p "$out"
B="--warmup 20 --steps 200"
case "$1" in
call1)
  rm -rf art; xz -dc mkc.xz > mkc && chmod +x mkc && tar -xJf art.txz
  nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.mem --format=csv,noheader | tee "$out/checks.txt"
  for d in art/fix-*; do
    n=$(basename "$d"); f=$(echo "$n" | sed -E 's/^fix-[a-z0-9_]+-(.*)-hf$/\1/')
    r=$(timeout 60 ./mkc check "../../../tests/fixtures/$f" --engine gpu --artifact "$d" 2>&1); rc=$?
    echo "check $n: rc=$rc $(echo "$r" | tail -2 | tr '\n' ' ')" | tee -a "$out/checks.txt"
  done
  # A 2-layer llama of hidden 256 (random bf16 weights) in every block format, K-quants
  # included: the GPU against the simulator on the same program (its reference is zeros,
  # so only max_rel_err_vs_sim means anything).
  for d in art/kq-*; do
    r=$(timeout 60 ./mkc check kq-tiny --engine gpu --artifact "$d" 2>&1); rc=$?
    echo "check $(basename "$d"): rc=$rc $(echo "$r" | grep max_rel_err_vs_sim | tail -1) $(echo "$r" | grep -i error | tail -1)" | tee -a "$out/checks.txt"
  done
  for round in 1 2; do
    for d in art/bench-*; do
      case "$round $d" in "2 art/bench-llama-3.1-8b"*) continue;; esac
      r=$(timeout 150 ./mkc bench "$d" --pos 128 $B 2>&1); rc=$?
      echo "bench $(basename "$d") round=$round: rc=$rc $(echo "$r" | tail -1)" | tee -a "$out/bench.txt"
    done
  done
  ;;
call2)
  cat ../m1 ../m2 | xz -dc > smollm2.gguf
  sha256sum smollm2.gguf | tee "$out/gguf.txt"
  xz -dc ../ref.xz > reference.safetensors
  r=$(timeout 200 ./mkc check smollm2.gguf --reference reference.safetensors --engine gpu --artifact art/gguf-smollm2 --no-sim -v 2>&1); rc=$?
  echo "$r" > "$out/check-gguf.txt"; echo "check gguf: rc=$rc $(echo "$r" | tail -2 | tr '\n' ' ')"
  r=$(timeout 120 ./mkc run smollm2.gguf --engine gpu --artifact art/gguf-smollm2 --prompt-ids "$(cat prompt_ids.txt)" --max-new-tokens 24 2>&1); rc=$?
  echo "run gguf: rc=$rc $(echo "$r" | tail -3 | tr '\n' ' ')" | tee "$out/run-gguf.txt"
  for round in 1 2; do
    for d in art/gguf-smollm2 art/bench-smollm2-135m-bf16 art/bench-smollm2-135m-q4_1; do
      w=(); [ "$(basename "$d")" = gguf-smollm2 ] && w=(--weights smollm2.gguf)
      r=$(timeout 150 ./mkc bench "$d" --pos 128 $B "${w[@]}" 2>&1); rc=$?
      echo "bench $(basename "$d") round=$round: rc=$rc $(echo "$r" | tail -1)" | tee -a "$out/bench.txt"
    done
  done
  ;;
esac
