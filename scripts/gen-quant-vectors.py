#!/usr/bin/env python3
"""Writes ir/tests/data/ggml-blocks.bin: test vectors for mkc-ir's ggml block formats
(ir/src/quant.rs), from implementations independent of mkc.

Provenance of the committed file:
  - dequantization (every format) and quantization of Q8_0, Q4_0, Q4_1: the `gguf` Python
    package 0.19.0 (`gguf.quants.dequantize` / `gguf.quants.quantize`), numpy 2.4.6;
  - quantization of Q4_K and Q6_K (gguf-py has none): ggml's own C reference
    (`quantize_row_q4_K_ref`, `quantize_row_q6_K_ref` with `make_qkx2_quants`,
    `make_qx_quants`, `nearest_int`), cut verbatim out of ggml's src/ggml-quants.c at
    ggml-org/ggml d99724f2b141fed9e1a9f402213506c081433465 and compiled with gcc 12.2
    (-O2 -ffp-contract=off, x86-64). The same C build's dequantize_row_* and
    quantize_row_{q4_0,q4_1,q8_0}_ref are checked here against gguf's results, so the two
    sources agree wherever both exist.

Usage: python3 scripts/gen-quant-vectors.py PATH/TO/ggml/src/ggml-quants.c
(in a venv with `pip install gguf numpy`). Inputs come from a fixed seed, so rerunning with
the same versions rewrites the file byte for byte.

With `--many N OUT` it writes instead, to OUT, quantization vectors of N random blocks per
format from ggml's C reference (too big to commit); the ignored Rust test
`quant::tests::quantize_matches_many_vectors` checks them:
  MKC_GGML_VECTORS=OUT cargo test -p mkc-ir quant -- --ignored

File format (all little-endian):
  magic b"MKCQVEC1", u32 section count, then per section:
  u32 ggml type id, u32 kind, u32 block count n, then
    kind 0 (dequantize): n blocks of raw bytes, then n * block_elems expected f32;
    kind 1 (quantize):   n * block_elems input f32, then n blocks of expected bytes.
"""

import ctypes
import os
import re
import struct
import subprocess
import sys
import tempfile

import gguf
import numpy as np
from gguf import GGMLQuantizationType as T
from gguf.quants import dequantize, quantize

OUT = os.path.join(os.path.dirname(__file__), "..", "ir", "tests", "data", "ggml-blocks.bin")

# ggml type -> (block elems, block bytes, byte offsets of the f16 scale fields)
FORMATS = {
    T.Q4_0: (32, 18, [0]),
    T.Q4_1: (32, 20, [0, 2]),
    T.Q8_0: (32, 34, [0]),
    T.Q4_K: (256, 144, [0, 2]),
    T.Q6_K: (256, 210, [208]),
}

C_PRELUDE = r"""
#include <assert.h>
#include <float.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#define GGML_RESTRICT restrict
#define MIN(a, b) ((a) < (b) ? (a) : (b))
#define MAX(a, b) ((a) > (b) ? (a) : (b))
#define QK4_0 32
#define QK4_1 32
#define QK8_0 32
#define QK_K 256
#define K_SCALE_SIZE 12
#define GROUP_MAX_EPS 1e-15f
typedef uint16_t ggml_half;
static inline float GGML_FP16_TO_FP32(ggml_half h) { _Float16 f; memcpy(&f, &h, 2); return (float)f; }
static inline ggml_half GGML_FP32_TO_FP16(float x) { _Float16 f = (_Float16)x; ggml_half h; memcpy(&h, &f, 2); return h; }
typedef struct { ggml_half d; uint8_t qs[QK4_0 / 2]; } block_q4_0;
typedef struct { ggml_half d; ggml_half m; uint8_t qs[QK4_1 / 2]; } block_q4_1;
typedef struct { ggml_half d; int8_t qs[QK8_0]; } block_q8_0;
typedef struct { ggml_half d; ggml_half dmin; uint8_t scales[K_SCALE_SIZE]; uint8_t qs[QK_K / 2]; } block_q4_K;
typedef struct { uint8_t ql[QK_K / 2]; uint8_t qh[QK_K / 4]; int8_t scales[QK_K / 16]; ggml_half d; } block_q6_K;
"""

C_FUNCTIONS = [
    "nearest_int", "make_qx_quants", "make_qkx2_quants", "get_scale_min_k4",
    "quantize_row_q4_0_ref", "quantize_row_q4_1_ref", "quantize_row_q8_0_ref",
    "quantize_row_q4_K_ref", "quantize_row_q6_K_ref",
    "dequantize_row_q4_0", "dequantize_row_q4_1", "dequantize_row_q8_0",
    "dequantize_row_q4_K", "dequantize_row_q6_K",
]

C_NAMES = {T.Q4_0: "q4_0", T.Q4_1: "q4_1", T.Q8_0: "q8_0", T.Q4_K: "q4_K", T.Q6_K: "q6_K"}


def build_ggml_reference(quants_c: str) -> ctypes.CDLL:
    """Cuts the named functions out of ggml-quants.c unchanged and compiles them alone."""
    src = open(quants_c).read()
    parts = [C_PRELUDE]
    for name in C_FUNCTIONS:
        m = re.search(r"^(?:static )?(?:inline )?(?:int|float|void) " + name + r"\(.*?^\}\n", src, re.S | re.M)
        if m is None:
            sys.exit(f"{name} not found in {quants_c}")
        parts.append(m.group(0))
    tmp = tempfile.mkdtemp()
    c_path, so_path = os.path.join(tmp, "ref.c"), os.path.join(tmp, "ref.so")
    open(c_path, "w").write("\n".join(parts))
    subprocess.run(["gcc", "-std=gnu11", "-O2", "-ffp-contract=off", "-fPIC", "-shared", "-o", so_path, c_path, "-lm"], check=True)
    return ctypes.CDLL(so_path)


def c_quantize(lib, qtype, x: np.ndarray) -> np.ndarray:
    elems, size, _ = FORMATS[qtype]
    x = np.ascontiguousarray(x, dtype=np.float32)
    out = np.zeros(x.size // elems * size, dtype=np.uint8)
    getattr(lib, f"quantize_row_{C_NAMES[qtype]}_ref")(x.ctypes.data_as(ctypes.c_void_p), out.ctypes.data_as(ctypes.c_void_p), ctypes.c_int64(x.size))
    return out


def c_dequantize(lib, qtype, blocks: np.ndarray) -> np.ndarray:
    elems, size, _ = FORMATS[qtype]
    blocks = np.ascontiguousarray(blocks, dtype=np.uint8)
    out = np.zeros(blocks.size // size * elems, dtype=np.float32)
    getattr(lib, f"dequantize_row_{C_NAMES[qtype]}")(blocks.ctypes.data_as(ctypes.c_void_p), out.ctypes.data_as(ctypes.c_void_p), ctypes.c_int64(out.size))
    return out


def f16_field(v) -> np.ndarray:
    return np.array([v], dtype=np.float16).view(np.uint8)


def set_scales(block: np.ndarray, offsets, values):
    for off, v in zip(offsets, values):
        block[off:off + 2] = f16_field(v)


def dequant_blocks(rng, qtype) -> np.ndarray:
    """Random blocks with finite scales of sensible size, plus edge blocks."""
    elems, size, offs = FORMATS[qtype]
    n_random = 6 if elems == 32 else 4
    blocks = []
    for _ in range(n_random):
        b = rng.integers(0, 256, size, dtype=np.uint8)
        set_scales(b, offs, rng.normal(0, 0.05, len(offs)))
        blocks.append(b)
    blocks.append(np.zeros(size, dtype=np.uint8))  # all zero
    full = np.full(size, 0xFF, dtype=np.uint8)  # max nibbles, max 6-bit scales
    if qtype == T.Q6_K:
        full[192:208] = 127  # i8 scales at their largest
    set_scales(full, offs, [0.5, 0.25][:len(offs)])
    blocks.append(full)
    neg = rng.integers(0, 256, size, dtype=np.uint8)
    set_scales(neg, offs, [-0.03, -0.7][:len(offs)])  # negative d (and dmin / m)
    blocks.append(neg)
    sub = rng.integers(0, 256, size, dtype=np.uint8)
    set_scales(sub, offs, [np.float16(6e-8), -np.float16(3e-6)][:len(offs)])  # f16 subnormals
    blocks.append(sub)
    big = rng.integers(0, 256, size, dtype=np.uint8)
    set_scales(big, offs, [60000.0, -30000.0][:len(offs)])  # near f16's largest
    blocks.append(big)
    return np.concatenate(blocks)


def quant_inputs_32(rng) -> np.ndarray:
    rows = [rng.normal(0, s, 32) for s in (1e-3, 0.02, 1.0, 10.0, 300.0)]
    rows.append(np.zeros(32))
    rows.append(np.full(32, 0.75))  # constant: Q4_1's d is 0
    ties = np.arange(32, dtype=np.float64) - 15.5  # x * id lands on .5 for Q8_0
    ties[0] = -127.0
    rows.append(ties)
    rows.append(rng.uniform(0.1, 2.0, 32))  # all positive
    rows.append(-rng.uniform(0.1, 2.0, 32))  # all negative
    tie = rng.normal(0, 1, 32)
    tie[3], tie[9] = -4.0, 4.0  # equal magnitudes: Q4_0 keeps the first
    rows.append(tie)
    outlier = rng.normal(0, 0.01, 32)
    outlier[17] = 5.0
    rows.append(outlier)
    return np.concatenate(rows).astype(np.float32)


def quant_inputs_256(rng) -> np.ndarray:
    rows = [rng.normal(0, 1, 256), rng.normal(0, 0.02, 256)]
    rows.append(np.zeros(256))
    rows.append(rng.uniform(0.5, 3.0, 256))  # all positive: Q4_K's min clamps to 0
    mixed = rng.normal(0, 1, 256) * np.repeat(10.0 ** (np.arange(8) - 4), 32)
    rows.append(mixed)  # sub-block magnitudes from 1e-4 to 1e3
    holes = rng.standard_t(3, 256)
    holes[32:64] = 0.0  # zero sub-blocks: a zero scale, skipped on requantization
    holes[160:176] = 0.0
    rows.append(holes)
    return np.concatenate(rows).astype(np.float32)


def many_inputs(rng, n: int, elems: int) -> np.ndarray:
    """Normal data at random scales, a tenth of the groups of 16 zeroed, some shifted."""
    x = rng.normal(0, 1, (n, elems)) * 10.0 ** rng.uniform(-3, 3, (n, 1))
    x += rng.choice([0.0, 0.0, 1.0], (n, 1)) * rng.normal(0, 1, (n, 1)) * np.abs(x).max(axis=1, keepdims=True)
    groups = x.reshape(n, -1, 16)
    groups[rng.uniform(size=groups.shape[:2]) < 0.1] = 0.0
    return groups.reshape(-1).astype(np.float32)


def write(path: str, sections):
    data = b"MKCQVEC1" + struct.pack("<I", len(sections))
    for qtype, kind, n, payload in sections:
        data += struct.pack("<III", int(qtype), kind, n) + payload
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    open(path, "wb").write(data)
    print(f"wrote {path}: {len(data)} bytes, {len(sections)} sections (gguf {gguf_version()}, numpy {np.__version__})")


def main():
    if len(sys.argv) == 5 and sys.argv[2] == "--many":
        lib = build_ggml_reference(sys.argv[1])
        rng = np.random.default_rng(1)
        sections = []
        for qtype, (elems, size, _) in FORMATS.items():
            x = many_inputs(rng, int(sys.argv[3]), elems)
            sections.append((qtype, 1, x.size // elems, x.tobytes() + c_quantize(lib, qtype, x).tobytes()))
        write(sys.argv[4], sections)
        return
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    lib = build_ggml_reference(sys.argv[1])
    rng = np.random.default_rng(20240607)
    sections = []
    for qtype, (elems, size, _) in FORMATS.items():
        blocks = dequant_blocks(rng, qtype)
        values = dequantize(blocks, qtype).astype(np.float32).ravel()
        assert values.tobytes() == c_dequantize(lib, qtype, blocks).tobytes(), f"gguf and ggml C disagree on {qtype.name}"
        sections.append((qtype, 0, len(blocks) // size, blocks.tobytes() + values.tobytes()))
    for qtype, (elems, size, _) in FORMATS.items():
        x = quant_inputs_32(rng) if elems == 32 else quant_inputs_256(rng)
        ref = c_quantize(lib, qtype, x)
        try:
            py = quantize(x.reshape(-1, elems), qtype).ravel()
            assert py.tobytes() == ref.tobytes(), f"gguf and ggml C disagree quantizing {qtype.name}"
        except NotImplementedError:
            pass  # gguf-py has no quantizer for the K formats: ggml's C alone
        sections.append((qtype, 1, x.size // elems, x.tobytes() + ref.tobytes()))
    write(OUT, sections)


def gguf_version() -> str:
    from importlib.metadata import version
    return version("gguf")


if __name__ == "__main__":
    main()
