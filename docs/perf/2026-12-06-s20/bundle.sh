#!/usr/bin/env bash
# Builds target/dev/s20/{mkc.xz,art.txz,*.sh,*.py}: runtime-only mkc and artifacts. ART_SET names set-N.sh.
set -euo pipefail
cd /work/main
mkc=target/release/mkc
cargo build --release --quiet -p mkc
cargo build --release --quiet -p mkc --no-default-features --features cuda --target-dir target/rt
D=target/dev/s20; rm -rf $D; mkdir -p $D/art
comp() { # name model flags... (ENVS: env assignments for the compiler)
  local n=$1 m=$2; shift 2
  env ${ENVS:-} "${MKC:-$mkc}" compile "$m" --emit=artifact -o "$D/art/$n" "$@" >/dev/null 2>&1 || { echo "compile $n failed"; env ${ENVS:-} "${MKC:-$mkc}" compile "$m" --emit=artifact -o "$D/art/$n" "$@" 2>&1 | tail -3; exit 1; }
  find "$D/art/$n" -name kernel.mlir -delete
}
source /work/s20/set-$ART_SET.sh
xz -T2 -6 -c target/rt/release/mkc > $D/mkc.xz
tar -C $D -cf - art | xz -T2 -6 > $D/art.txz && rm -rf $D/art
cp /work/s20/*.sh /work/s20/*.py $D/
du -sh $D/*
