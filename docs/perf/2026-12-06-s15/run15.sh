#!/usr/bin/env bash
# Session 15 device calls. call2: unpack; quantized kernels vs the simulator; benches.
# call3: join the GGUF (m1 here, m2 + ref.xz in ../p2), check vs transformers, run, bench.
set -uo pipefail
cd "$(dirname "$0")"
out=${OUT:-out}; mkdir -p "$out"
B="--warmup 20 --steps 200"
case "$1" in
call2)
  rm -rf art; xz -dc mkc.xz > mkc && chmod +x mkc && tar -xJf art.txz
  nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.mem --format=csv,noheader | tee "$out/checks.txt"
  for m in kq kqw; do python3 gen_kq.py $m; done
  for d in art/kq-* art/kqw-*; do
    n=$(basename "$d"); m=${n%-*}
    r=$(timeout 120 ./mkc check $m --engine gpu --artifact "$d" 2>&1); rc=$?
    echo "check $n: rc=$rc $(echo "$r" | grep -E 'max_rel_err_vs_sim' | tail -1) $(echo "$r" | grep -iE 'error|panic' | tail -1)" | tee -a "$out/checks.txt"
  done
  for d in art/bench-1b-*; do
    r=$(timeout 150 ./mkc bench "$d" --pos 128 $B 2>&1); rc=$?
    echo "bench $(basename "$d"): rc=$rc $(echo "$r" | tail -1)" | tee -a "$out/bench.txt"
  done
  for d in art/bench-8b-*; do
    r=$(timeout 150 ./mkc bench "$d" --pos 128 $B 2>&1); rc=$?
    echo "bench $(basename "$d"): rc=$rc $(echo "$r" | tail -1)" | tee -a "$out/bench.txt"
  done
  for d in art/bench-1b-q4_0 art/bench-1b-q4_0-base; do
    r=$(timeout 150 ./mkc bench "$d" --pos 128 $B 2>&1); rc=$?
    echo "bench $(basename "$d") round 2: rc=$rc $(echo "$r" | tail -1)" | tee -a "$out/bench.txt"
  done
  ;;
call4)
  rm -rf art; xz -dc mkc.xz > mkc && chmod +x mkc && tar -xJf art.txz
  for m in kq kqw; do python3 gen_kq.py $m; done
  for d in art/kq-* art/kqw-*; do
    n=$(basename "$d"); m=${n%-*}
    r=$(timeout 120 ./mkc check $m --engine gpu --artifact "$d" 2>&1); rc=$?
    echo "check $n: rc=$rc $(echo "$r" | grep -E 'max_rel_err_vs_sim' | tail -1) $(echo "$r" | grep -iE 'error|panic' | tail -1)" | tee -a "$out/checks.txt"
  done
  for round in 1 2; do for d in art/bench-1b-*; do
    r=$(timeout 150 ./mkc bench "$d" --pos 128 $B 2>&1); rc=$?
    echo "bench $(basename "$d") round $round: rc=$rc $(echo "$r" | tail -1 | grep -oE '"median_ms":[0-9.]+')" | tee -a "$out/bench.txt"
  done; done
  for d in art/bench-8b-*; do
    r=$(timeout 150 ./mkc bench "$d" --pos 128 $B 2>&1); rc=$?
    echo "bench $(basename "$d"): rc=$rc $(echo "$r" | tail -1 | grep -oE '"median_ms":[0-9.]+')" | tee -a "$out/bench.txt"
  done
  ;;
call6)
  rm -rf art; xz -dc mkc.xz > mkc && chmod +x mkc && tar -xJf art.txz; ls art
  ;;
call7)
  cat m1 ../p2/m2 | xz -dc > smollm2.gguf; sha256sum smollm2.gguf | tee "$out/gguf.txt"
  # mkc serve on the GPU: the SmolLM2 GGUF (chat), then Llama-3.2-1B's shapes (random weights).
  serve() { # out-name model args...
    local n=$1; shift
    ./mkc serve "$@" --engine gpu --port 8123 > "$out/serve-$n.out" 2> "$out/serve-$n.err" &
    pid=$!
    for i in $(seq 120); do curl -sf localhost:8123/health >/dev/null 2>&1 && break; sleep 0.5; done
  }
  serve smollm2 smollm2.gguf --artifact art/gguf-smollm2
  python3 client.py http://127.0.0.1:8123 chat 6 256 | tee "$out/client-smollm2.txt"
  curl -s localhost:8123/metrics > "$out/metrics-smollm2.txt"; kill -INT $pid; wait $pid
  serve 1b tests/fixtures/configs/llama-3.2-1b.json --random-weights --artifact art/serve-1b
  python3 client.py http://127.0.0.1:8123 completions 6 256 1,2,3,4,5,6,7,8 | tee "$out/client-1b.txt"
  curl -s localhost:8123/metrics > "$out/metrics-1b.txt"; kill -INT $pid; wait $pid
  printf 'What is the capital of France?\nAnd of Germany?\n' | timeout 60 ./mkc chat smollm2.gguf --engine gpu --artifact art/gguf-smollm2 --verbose > "$out/chat.txt" 2>&1
  tail -5 "$out/chat.txt"; tail -3 "$out"/serve-*.err
  ;;
call8)
  # The runtime-only build on a GPU host: no cache entry (a clear error naming the entry),
  # then the entry filled with an artifact compiled elsewhere, then found and run.
  rm -rf art; xz -dc mkc.xz > mkc && chmod +x mkc && tar -xJf art.txz
  export XDG_CACHE_HOME=$PWD/cache; rm -rf cache
  M=../../../tests/fixtures/llama-tiny
  ./mkc run $M --prompt-ids 1,2,3,4 --max-new-tokens 8 > "$out/cache-miss.txt" 2>&1; echo "miss rc=$?" | tee -a "$out/cache-miss.txt"
  entry=$(grep -oE "in the cache \([^)]*\)" "$out/cache-miss.txt" | sed -E 's/in the cache \((.*)\)/\1/')
  echo "entry: $entry"; mkdir -p "$(dirname "$entry")" && cp -r art/tiny-2048 "$entry"
  /usr/bin/time -f "wall %e s" ./mkc run $M --prompt-ids 1,2,3,4 --max-new-tokens 8 > "$out/cache-hit.txt" 2>&1; echo "hit rc=$?" | tee -a "$out/cache-hit.txt"
  ./mkc run $M --engine interp --prompt-ids 1,2,3,4 --max-new-tokens 8 > "$out/interp.txt" 2>&1
  tail -4 "$out/cache-miss.txt" "$out/cache-hit.txt" "$out/interp.txt"
  for d in art/bench-1b-q4_0 art/bench-1b-bf16; do
    r=$(timeout 150 ./mkc bench "$d" --pos 128 $B --trace "$out/trace-$(basename $d).json" 2>&1); rc=$?
    echo "bench $(basename "$d") traced: rc=$rc $(echo "$r" | tail -1 | grep -oE '"median_ms":[0-9.]+')" | tee -a "$out/bench.txt"
  done
  gzip -9 "$out"/trace-*.json
  ;;
call9)
  # The flattened blocks loop (rounds over rows, next round's loads first) against the
  # committed kernel (-v1), same run.
  rm -rf art; xz -dc mkc.xz > mkc && chmod +x mkc && tar -xJf art.txz
  for m in kq kqw kqs; do python3 gen_kq.py $m; done
  for d in art/kq-* art/kqw-* art/kqs-*; do
    n=$(basename "$d"); m=${n%-*}
    r=$(timeout 120 ./mkc check $m --engine gpu --artifact "$d" 2>&1); rc=$?
    echo "check $n: rc=$rc $(echo "$r" | grep -E 'max_rel_err_vs_sim' | tail -1) $(echo "$r" | grep -iE 'error|panic' | tail -1)" | tee -a "$out/checks.txt"
  done
  for round in 1 2; do for d in art/bench-1b-*; do
    r=$(timeout 150 ./mkc bench "$d" --pos 128 $B 2>&1); rc=$?
    echo "bench $(basename "$d") round $round: rc=$rc $(echo "$r" | tail -1 | grep -oE '"median_ms":[0-9.]+')" | tee -a "$out/bench.txt"
  done; done
  r=$(timeout 150 ./mkc bench art/bench-8b-q4_0 --pos 128 $B 2>&1); rc=$?
  echo "bench bench-8b-q4_0: rc=$rc $(echo "$r" | tail -1 | grep -oE '"median_ms":[0-9.]+')" | tee -a "$out/bench.txt"
  ;;
call10)
  cat m1 ../p2/m2 | xz -dc > smollm2.gguf; sha256sum smollm2.gguf | tee "$out/gguf.txt"
  xz -dc ../p2/ref.xz > reference.safetensors
  r=$(timeout 200 ./mkc check smollm2.gguf --reference reference.safetensors --engine gpu --artifact art/gguf-smollm2 --no-sim 2>&1); rc=$?
  echo "$r" > "$out/check-gguf.txt"; echo "check gguf: rc=$rc $(echo "$r" | tail -2 | tr '\n' ' ')"
  r=$(timeout 120 ./mkc run smollm2.gguf --engine gpu --artifact art/gguf-smollm2 --prompt-ids "$(cat prompt_ids.txt)" --max-new-tokens 24 --ignore-eos 2>&1); rc=$?
  echo "run gguf: rc=$rc $(echo "$r" | tail -2 | tr '\n' ' ')" | tee "$out/run-gguf.txt"
  for round in 1 2; do for d in art/gguf-smollm2 art/gguf-smollm2-v1; do
    r=$(timeout 150 ./mkc bench $d --pos 128 $B --weights smollm2.gguf 2>&1); rc=$?
    echo "bench $(basename $d) round=$round: rc=$rc $(echo "$r" | tail -1 | grep -oE '"median_ms":[0-9.]+')" | tee -a "$out/bench.txt"
  done; done
  ;;
call11)
  # call9 ran out of time after its first bench: the rest, each bounded.
  rm -rf art; xz -dc mkc.xz > mkc && chmod +x mkc && tar -xJf art.txz
  for d in art/bench-1b-q8_0 art/bench-1b-q4_0-v1 art/bench-1b-q4_0 art/bench-1b-q8_0-v1 art/bench-8b-q4_0; do
    r=$(timeout 75 ./mkc bench "$d" --pos 128 $B 2>&1); rc=$?
    echo "bench $(basename "$d"): rc=$rc $(echo "$r" | tail -1 | grep -oE '"(median_ms|load_s)":[0-9.]+' | tr '\n' ' ')" >> "$out/bench.txt"
  done
  ;;
call3)
  cat m1 ../p2/m2 | xz -dc > smollm2.gguf; sha256sum smollm2.gguf | tee "$out/gguf.txt"
  xz -dc ../p2/ref.xz > reference.safetensors
  r=$(timeout 200 ./mkc check smollm2.gguf --reference reference.safetensors --engine gpu --artifact art/gguf-smollm2 --no-sim 2>&1); rc=$?
  echo "$r" > "$out/check-gguf.txt"; echo "check gguf: rc=$rc $(echo "$r" | tail -2 | tr '\n' ' ')"
  r=$(timeout 120 ./mkc run smollm2.gguf --engine gpu --artifact art/gguf-smollm2 --prompt-ids "$(cat prompt_ids.txt)" --max-new-tokens 24 2>&1); rc=$?
  echo "run gguf: rc=$rc $(echo "$r" | tail -3 | tr '\n' ' ')" | tee "$out/run-gguf.txt"
  for round in 1 2; do
    r=$(timeout 150 ./mkc bench art/gguf-smollm2 --pos 128 $B --weights smollm2.gguf 2>&1); rc=$?
    echo "bench gguf-smollm2 round=$round: rc=$rc $(echo "$r" | tail -1)" | tee -a "$out/bench.txt"
  done
  ;;
esac
