#!/usr/bin/env bash
# Build llama.cpp (CUDA) + llama-bench, then time batch-1 decode (llama-bench -p 0 -n 128)
# on random-weight GGUFs of Llama-3.2-1B and Llama-3.1-8B, q4_0 and q8_0.
#
# usage:  bash run.sh                       (all four models, 1B first)
#         MODELS="1b-q4_0 8b-q4_0" bash run.sh
# env:    OUT         results folder (default ./out); results go to $OUT/llamacpp-bench.txt
#         MODELS      subset of: 1b-q4_0 1b-q8_0 8b-q4_0 8b-q8_0
#         BUDGET_S    wall-clock budget for the whole script incl. build (default 520 s);
#                     a model is skipped if its estimated cost would exceed what is left
#         REPS        llama-bench -r (default 5);  NGEN  -n (default 128);  FA  -fa list (default "0,1")
#         FORCE_BUILD=1  rebuild even if build/bin/llama-bench exists;  BUILD_ONLY=1  stop after the build
#         BUILD_TIMEOUT  seconds allowed for the build (default BUDGET_S-30; killed build resumes on rerun)
#         SCRATCH     where GGUFs are written (default <bundle>/scratch; each deleted after use)
#         EXTRA_BENCH_ARGS  appended to the llama-bench command line
set -uo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cd "$HERE"
T0=$(date +%s)
OUT="${OUT:-$HERE/out}"
mkdir -p "$OUT"
RES="$OUT/llamacpp-bench.txt"
ERR="$OUT/llamacpp-bench.stderr.txt"
MODELS="${MODELS:-1b-q4_0 1b-q8_0 8b-q4_0 8b-q8_0}"
BUDGET_S="${BUDGET_S:-520}"
REPS="${REPS:-5}"
NGEN="${NGEN:-128}"
FA="${FA:-0,1}"
SCRATCH="${SCRATCH:-$HERE/scratch}"
BENCH="$HERE/build/bin/llama-bench"
PY="${PYTHON:-python3}"

elapsed() { echo $(( $(date +%s) - T0 )); }
log() { echo "[run +$(elapsed)s] $*"; echo "[run +$(elapsed)s] $*" >> "$RES"; }
cleanup() { rm -rf "$SCRATCH"; }
trap cleanup EXIT

{
    echo "===================================================================="
    echo "llama.cpp decode benchmark (random weights)  $(date -u +%Y-%m-%dT%H:%M:%SZ)  host=$(hostname)"
    echo "GPU: $(nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm,power.limit --format=csv,noheader 2>&1 | head -4 | tr '\n' ';')"
    echo "nvcc: $( (command -v nvcc >/dev/null && nvcc --version || /usr/local/cuda/bin/nvcc --version) 2>/dev/null | tail -1)"
    echo "cpu cores: $(nproc); models: $MODELS; budget ${BUDGET_S}s; llama-bench -p 0 -n $NGEN -ngl 99 -r $REPS -fa $FA"
    echo "llama.cpp: vendored in llama-cpp-python 0.3.16 (ggml-org/llama.cpp@4227c9be), stripped tree"
} >> "$RES"

# ---------------------------------------------------------------- build
if [ -x "$BENCH" ] && [ "${FORCE_BUILD:-0}" != "1" ]; then
    log "build: $BENCH exists, skipping build"
else
    log "build: starting (log: $OUT/llamacpp-build.log)"
    tb=$(date +%s)
    # stop the build before the budget is gone (a rerun on the same machine resumes it incrementally)
    if timeout "${BUILD_TIMEOUT:-$(( BUDGET_S - 30 ))}" bash "$HERE/build.sh" > "$OUT/llamacpp-build.log" 2>&1; then
        log "build: OK in $(( $(date +%s) - tb ))s"
    else
        log "build: FAILED after $(( $(date +%s) - tb ))s; last lines of the log:"
        tail -40 "$OUT/llamacpp-build.log" | tee -a "$RES"
        exit 1
    fi
fi

if [ "${BUILD_ONLY:-0}" = "1" ]; then log "BUILD_ONLY=1: done; total $(elapsed)s"; exit 0; fi

# ---------------------------------------------------------------- models
# name -> config, type, estimated seconds (generate + load + bench with -fa 0,1, -r 5)
declare -A CFG=( [1b]="$HERE/configs/llama-3.2-1b.json" [8b]="$HERE/configs/llama-3.1-8b.json" )
declare -A EST=( [1b-q4_0]=25 [1b-q8_0]=30 [8b-q4_0]=60 [8b-q8_0]=80 )

mkdir -p "$SCRATCH"
for m in $MODELS; do
    size="${m%%-*}"; wt="${m#*-}"
    cfg="${CFG[$size]:-}"
    if [ -z "$cfg" ] || [ -z "${EST[$m]:-}" ]; then log "unknown model '$m' (want 1b-q4_0 1b-q8_0 8b-q4_0 8b-q8_0)"; continue; fi
    left=$(( BUDGET_S - $(elapsed) ))
    if [ "$left" -lt "${EST[$m]}" ]; then
        log "SKIP $m: ${left}s left of the ${BUDGET_S}s budget, estimated ${EST[$m]}s"
        continue
    fi
    f="$SCRATCH/$m.gguf"
    log "---- $m: generating $f"
    tg=$(date +%s)
    if ! "$PY" "$HERE/make_gguf.py" "$cfg" "$f" --type "$wt" >> "$RES" 2>> "$ERR"; then
        log "$m: GGUF generation FAILED (see $ERR)"; rm -f "$f"; continue
    fi
    log "$m: generated in $(( $(date +%s) - tg ))s"
    left=$(( BUDGET_S - $(elapsed) ))
    tmo=$(( left > 300 ? 300 : (left > 20 ? left : 20) ))
    tbn=$(date +%s)
    echo "\$ llama-bench -m $m.gguf -p 0 -n $NGEN -ngl 99 -r $REPS -fa $FA -o md ${EXTRA_BENCH_ARGS:-}" >> "$RES"
    echo "==== $m" >> "$ERR"
    timeout "$tmo" "$BENCH" -m "$f" -p 0 -n "$NGEN" -ngl 99 -r "$REPS" -fa "$FA" -o md ${EXTRA_BENCH_ARGS:-} >> "$RES" 2>> "$ERR"
    rc=$?
    log "$m: llama-bench rc=$rc in $(( $(date +%s) - tbn ))s"
    if [ "$rc" != "0" ]; then tail -15 "$ERR" >> "$RES"; fi
    rm -f "$f"
done
log "done; total $(elapsed)s"
