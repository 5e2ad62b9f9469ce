#!/usr/bin/env bash
# Builds target/dev/s15/{mkc.xz,art.txz}: runtime-only mkc and artifacts. ART_SET names a function below.
set -euo pipefail
cd /work/main
OLD=${OLD:-}   # an older release mkc binary for "base" artifacts
mkc=target/release/mkc
cargo build --release --quiet
cargo build --release --quiet -p mkc --no-default-features --features cuda --target-dir target/rt
D=target/dev/s15; rm -rf $D/art; mkdir -p $D/art
comp() { # name model flags...
  local n=$1 m=$2; shift 2
  "${MKC:-$mkc}" compile "$m" --emit=artifact -o "$D/art/$n" "$@" >/dev/null 2>&1 || { echo "compile $n failed"; "${MKC:-$mkc}" compile "$m" --emit=artifact -o "$D/art/$n" "$@" 2>&1 | tail -3; exit 1; }
  find "$D/art/$n" -name kernel.mlir -delete
}
source /work/s15/set-$ART_SET.sh
xz -T2 -6 -c target/rt/release/mkc > $D/mkc.xz
tar -C $D -cf - art | xz -T2 -6 > $D/art.txz && rm -rf $D/art
du -sh $D/*
