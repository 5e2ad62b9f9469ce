#!/usr/bin/env bash
# Build llama.cpp's CUDA backend + llama-bench from the stripped source in this bundle.
# Offline: nothing is downloaded (LLAMA_CURL=OFF, llguidance off, no FetchContent on x86).
# usage (from anywhere):  bash build.sh            -> ./build/bin/llama-bench (next to this script)
# env: JOBS (default nproc), CUDA_ARCH (default 90), BUILD_DIR (default <bundle>/build),
#      CUDA_BUILD=0 for a CPU-only build (local sanity check), EXTRA_CMAKE_ARGS
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cd "$HERE"
SRC="$HERE/llamacpp-src"
BUILD_DIR="${BUILD_DIR:-$HERE/build}"
JOBS="${JOBS:-$(nproc)}"
CUDA_ARCH="${CUDA_ARCH:-90}"
CUDA_BUILD="${CUDA_BUILD:-1}"

t0=$(date +%s)
if [ ! -f "$SRC/CMakeLists.txt" ]; then
    echo "[build] unpacking llamacpp-src.tar.xz"
    tar -xJf "$HERE/llamacpp-src.tar.xz" -C "$HERE"
fi

CUDA_ARGS=(-DGGML_CUDA=OFF)
if [ "$CUDA_BUILD" = "1" ]; then
    if ! command -v nvcc >/dev/null 2>&1; then
        for d in /usr/local/cuda/bin /usr/local/cuda-*/bin; do
            if [ -x "$d/nvcc" ]; then export PATH="$d:$PATH"; break; fi
        done
    fi
    command -v nvcc >/dev/null 2>&1 || { echo "[build] ERROR: nvcc not found" >&2; exit 2; }
    export CUDACXX="${CUDACXX:-$(command -v nvcc)}"
    echo "[build] nvcc: $CUDACXX ($(nvcc --version | tail -1))"
    CUDA_ARGS=(
        -DGGML_CUDA=ON
        -DCMAKE_CUDA_ARCHITECTURES="$CUDA_ARCH"
        -DGGML_CUDA_FA=ON                 # keep FlashAttention kernels (-fa 1 is benchmarked)
        -DGGML_CUDA_FA_ALL_QUANTS=OFF     # only f16/q4_0/q8_0 KV combos (default KV cache is f16)
        -DGGML_CUDA_GRAPHS=ON             # default for llama.cpp builds; used by decode
    )
fi

GEN=()
if command -v ninja >/dev/null 2>&1; then GEN=(-G Ninja); fi

echo "[build] cmake configure (jobs=$JOBS, arch=$CUDA_ARCH, cuda=$CUDA_BUILD)"
cmake -S "$SRC" -B "$BUILD_DIR" "${GEN[@]}" \
    -DCMAKE_BUILD_TYPE=Release \
    -DLLAMA_BUILD_COMMIT=4227c9be -DLLAMA_BUILD_NUMBER=0 \
    -DGGML_NATIVE=ON \
    -DLLAMA_CURL=OFF \
    -DLLAMA_LLGUIDANCE=OFF \
    -DLLAMA_BUILD_TESTS=OFF \
    -DLLAMA_BUILD_EXAMPLES=OFF \
    -DLLAMA_BUILD_SERVER=OFF \
    -DLLAMA_BUILD_TOOLS=ON \
    -DLLAMA_BUILD_COMMON=ON \
    -DGGML_BUILD_TESTS=OFF \
    -DGGML_BUILD_EXAMPLES=OFF \
    -DGGML_RPC=OFF \
    -DGGML_BLAS=OFF \
    "${CUDA_ARGS[@]}" ${EXTRA_CMAKE_ARGS:-}
t1=$(date +%s)
echo "[build] configure took $((t1 - t0)) s; building llama-bench"
cmake --build "$BUILD_DIR" --target llama-bench -j"$JOBS"
t2=$(date +%s)
echo "[build] build took $((t2 - t1)) s; total $((t2 - t0)) s"
ls -la "$BUILD_DIR/bin/llama-bench"
