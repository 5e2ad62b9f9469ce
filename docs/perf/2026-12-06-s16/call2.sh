#!/usr/bin/env bash
# call 2: the 8B benches; llama.cpp's 1B rows after (its build from call 1 kept).
cd "$(dirname "$0")"
STAGE=bench8 OUT=$OUT ./run.sh > $OUT/log2.txt 2>&1
( cd llamapeer && OUT=$OUT/llama MODELS="${MODELS:-1b-q4_0 1b-q8_0}" BUDGET_S=${BUDGET_S:-300} bash run.sh > $OUT/llama-driver.txt 2>&1 )
