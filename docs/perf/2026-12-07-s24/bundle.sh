#!/usr/bin/env bash
# Builds target/dev/s21/{mkc.xz,art.txz,*.sh,*.py}: runtime-only mkc and artifacts from three compilers
# (/work/s21/mkc-{base,new,var}: main's code, this session's, this session's + s20's attention-variants.patch). ART_SET names set-N.sh.
set -euo pipefail
cd /work/main
cargo build --release --quiet -p mkc --no-default-features --features cuda --target-dir target/rt
D=target/dev/s23; rm -rf $D; mkdir -p $D/art
comp() { # name model flags... (MKC: the compiler; ENVS: env assignments for it)
  local n=$1 m=$2; shift 2
  env ${ENVS:-} "$MKC" compile "$m" --emit=artifact -o "$D/art/$n" "$@" >/dev/null 2>&1 || { echo "compile $n failed"; env ${ENVS:-} "$MKC" compile "$m" --emit=artifact -o "$D/art/$n" "$@" 2>&1 | tail -3; exit 1; }
  find "$D/art/$n" -name kernel.mlir -delete
}
source /work/s24/set-$ART_SET.sh
xz -T2 -6 -c target/rt/release/mkc > $D/mkc.xz
tar -C $D -cf - art | xz -T2 -6 > $D/art.txz && rm -rf $D/art
cp /work/s24/call.sh /work/s22/expected-run.txt ../shared/bench/peer_decode.py ../shared/configs/smollm2-135m.json docs/perf/2026-12-06-s19/ph.py $D/
du -sh $D/*
