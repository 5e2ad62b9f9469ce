#!/usr/bin/env bash
# call 1: llama.cpp's CUDA build in the background (niced), mkc's checks and benches.
cd "$(dirname "$0")"
( cd llamapeer && JOBS=12 OUT=$OUT/llama BUILD_ONLY=1 BUDGET_S=560 nice -n 19 bash run.sh > $OUT/llama-build-driver.txt 2>&1 ) &
OUT=$OUT ./run.sh > $OUT/log.txt 2>&1
wait
