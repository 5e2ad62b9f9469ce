#!/usr/bin/env bash
# Builds $D (default target/dev/s25)/{mkc.xz,art.txz,call.sh,...}: the runtime-only mkc and the artifacts set-$ART_SET.sh
# (beside this script, or in $SETS) compiles with target/release/mkc. Carry $D and run call.sh ($CALL, default
# session 24's) there.
set -euo pipefail
H=$(cd "$(dirname "$0")" && pwd)
cd "$H/../../.."
cargo build --release --quiet -p mkc --no-default-features --features cuda --target-dir target/rt
D=${D:-target/dev/s25}; rm -rf $D; mkdir -p $D/art
comp() { # name model flags... (MKC: the compiler; ENVS: env assignments for it)
  local n=$1 m=$2; shift 2
  env ${ENVS:-} "$MKC" compile "$m" --emit=artifact -o "$D/art/$n" "$@" >/dev/null 2>&1 || { echo "compile $n failed"; env ${ENVS:-} "$MKC" compile "$m" --emit=artifact -o "$D/art/$n" "$@" 2>&1 | tail -3; exit 1; }
  find "$D/art/$n" -name kernel.mlir -delete
}
source "${SETS:-$H}/set-$ART_SET.sh"
xz -T2 -6 -c target/rt/release/mkc > $D/mkc.xz
tar -C $D -cf - art | xz -T2 -6 > $D/art.txz && rm -rf $D/art
cp "${CALL:-$H/../2026-12-07-s24/call.sh}" docs/perf/2026-12-07-s22/expected-run.txt ../shared/bench/peer_decode.py ../shared/configs/smollm2-135m.json docs/perf/2026-12-06-s19/ph.py $D/
du -sh $D/*
