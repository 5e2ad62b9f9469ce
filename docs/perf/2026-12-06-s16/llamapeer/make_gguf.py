#!/usr/bin/env python3
"""Write a llama-architecture GGUF with RANDOM weights for a Hugging Face config.json.

Meant for decode-speed benchmarks (llama-bench -p 0 -n 128): the file has the exact
tensor names / shapes / types llama.cpp's `llama` arch expects, but the weight bytes
are random (quantized blocks are filled directly with random bytes + valid f16 scales;
nothing is quantized from floats, so an 8B model is written at disk speed).

usage: python3 make_gguf.py CONFIG.json OUT.gguf --type q4_0|q8_0 [--output-type TYPE]
                            [--seed N] [--pool-mb N]

  --type         type of every 2-D matrix (token_embd, attn_q/k/v/output, ffn_gate/up/down, output)
  --output-type  type of output.weight (or of the tied token_embd); default: same as --type
                 (llama-quantize's default recipe would use q6_k there; pass --output-type q6_k to mimic it)
Norms and rope_freqs are F32.

The gguf package is imported from ./gguf-py next to this script (vendored from llama.cpp),
falling back to an installed `gguf`.  Needs only numpy.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
import types

HERE = os.path.dirname(os.path.abspath(__file__))
for cand in (os.path.join(HERE, "gguf-py"), os.path.join(HERE, "llamacpp-src", "gguf-py")):
    if os.path.isdir(os.path.join(cand, "gguf")):
        sys.path.insert(0, cand)
        break

try:  # gguf/metadata.py imports yaml at import time; we never use it
    import yaml  # noqa: F401
except ImportError:
    sys.modules["yaml"] = types.ModuleType("yaml")

import numpy as np
import gguf
from gguf import GGUFWriter, GGMLQuantizationType as QT

# type name -> (ggml type, block elements, block bytes, byte offset of the f16 scale or None, llama ftype)
TYPES = {
    "q4_0": (QT.Q4_0, 32, 18, 0, 2),
    "q8_0": (QT.Q8_0, 32, 34, 0, 7),
    "q6_k": (QT.Q6_K, 256, 210, 208, 18),
    "f16":  (QT.F16, 1, 2, None, 1),
}
# scale ranges chosen so random weights have a std of roughly 0.01-0.05 (keeps activations finite)
SCALE_RANGE = {"q4_0": (0.001, 0.01), "q8_0": (0.0001, 0.001), "q6_k": (0.0001, 0.001)}


class BlockPool:
    """A pool of random, valid quantized blocks; tensors are written as slices of it."""

    def __init__(self, tname: str, rng: np.random.Generator, pool_bytes: int):
        qt, be, bb, soff, _ = TYPES[tname]
        self.be, self.bb = be, bb
        nblk = max(1, pool_bytes // bb)
        if tname == "f16":
            buf = (rng.standard_normal(nblk, dtype=np.float32) * 0.02).astype(np.float16).view(np.uint8)
            self.buf = buf.reshape(nblk, bb)
        else:
            buf = np.frombuffer(rng.bytes(nblk * bb), dtype=np.uint8).copy().reshape(nblk, bb)
            lo, hi = SCALE_RANGE[tname]
            d = rng.uniform(lo, hi, size=nblk).astype(np.float16)
            buf[:, soff:soff + 2] = d.view(np.uint8).reshape(nblk, 2)
            if tname == "q6_k":  # int8 sub-block scales at [192:208]: keep them small and positive
                buf[:, 192:208] = rng.integers(1, 32, size=(nblk, 16), dtype=np.uint8)
            self.buf = buf
        self.nblk = nblk
        self.rng = rng

    def write(self, fout, n_elems: int) -> int:
        assert n_elems % self.be == 0
        left = n_elems // self.be
        written = 0
        while left > 0:
            n = min(left, self.nblk)
            start = int(self.rng.integers(0, self.nblk - n + 1))
            fout.write(memoryview(self.buf[start:start + n]).cast("B"))
            left -= n
            written += n * self.bb
        return written


def rope_factors_llama3(cfg: dict, dim: int) -> np.ndarray:
    rs = cfg["rope_scaling"]
    base = cfg.get("rope_theta", 10000.0)
    freqs = 1.0 / (base ** (np.arange(0, dim, 2, dtype=np.float32) / dim))
    factor = rs.get("factor", 8.0)
    lo = rs.get("low_freq_factor", 1.0)
    hi = rs.get("high_freq_factor", 4.0)
    old = rs.get("original_max_position_embeddings", 8192)
    lo_wl, hi_wl = old / lo, old / hi
    out = []
    for f in freqs:
        wl = 2 * math.pi / f
        if wl < hi_wl:
            out.append(1.0)
        elif wl > lo_wl:
            out.append(factor)
        else:
            s = (old / wl - lo) / (hi - lo)
            out.append(1 / ((1 - s) / factor + s))
    return np.array(out, dtype=np.float32)


def build_vocab(n_vocab: int):
    """SentencePiece-style ('llama') vocab: <unk>, <s>, </s>, 256 byte tokens, then synthetic pieces."""
    assert n_vocab >= 3 + 256 + 1
    tokens = ["<unk>", "<s>", "</s>"] + [f"<0x{i:02X}>" for i in range(256)]
    n_fixed = len(tokens)
    tokens += [f"\u2581t{i}" for i in range(n_vocab - n_fixed)]
    scores = np.zeros(n_vocab, dtype=np.float32)
    scores[n_fixed:] = -np.arange(n_vocab - n_fixed, dtype=np.float32)
    ttypes = np.full(n_vocab, int(gguf.TokenType.NORMAL), dtype=np.int32)
    ttypes[0] = int(gguf.TokenType.UNKNOWN)
    ttypes[1:3] = int(gguf.TokenType.CONTROL)
    ttypes[3:n_fixed] = int(gguf.TokenType.BYTE)
    return tokens, scores, ttypes


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("config")
    ap.add_argument("out")
    ap.add_argument("--type", default="q4_0", choices=sorted(TYPES))
    ap.add_argument("--output-type", default=None, choices=sorted(TYPES))
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--pool-mb", type=int, default=64, help="size of the random block pool per type (MB)")
    ap.add_argument("--name", default=None)
    args = ap.parse_args()

    t0 = time.time()
    cfg = json.load(open(args.config))
    H = cfg["hidden_size"]
    L = cfg["num_hidden_layers"]
    nh = cfg["num_attention_heads"]
    nkv = cfg.get("num_key_value_heads", nh)
    hd = cfg.get("head_dim") or H // nh
    ff = cfg["intermediate_size"]
    V = cfg["vocab_size"]
    tied = bool(cfg.get("tie_word_embeddings", False))
    eps = float(cfg.get("rms_norm_eps", 1e-5))
    theta = float(cfg.get("rope_theta", 10000.0))
    ctx = int(cfg.get("max_position_embeddings", 4096))
    wtype = args.type
    otype = args.output_type or wtype

    rng = np.random.default_rng(args.seed)
    pools: dict[str, BlockPool] = {}

    def pool(t):
        if t not in pools:
            pools[t] = BlockPool(t, rng, args.pool_mb << 20)
        return pools[t]

    # (name, numpy-order shape [rows, cols] -> ggml ne = (cols, rows), type name or 'f32', f32 data or None)
    plan: list[tuple[str, tuple[int, ...], str, np.ndarray | None]] = []
    plan.append(("token_embd.weight", (V, H), otype if tied else wtype, None))
    rs = cfg.get("rope_scaling") or {}
    if rs.get("rope_type", rs.get("type")) == "llama3":
        plan.append(("rope_freqs.weight", (hd // 2,), "f32", rope_factors_llama3(cfg, hd)))
    for i in range(L):
        p = f"blk.{i}."
        plan += [
            (p + "attn_norm.weight", (H,), "f32", None),
            (p + "attn_q.weight", (nh * hd, H), wtype, None),
            (p + "attn_k.weight", (nkv * hd, H), wtype, None),
            (p + "attn_v.weight", (nkv * hd, H), wtype, None),
            (p + "attn_output.weight", (H, nh * hd), wtype, None),
            (p + "ffn_norm.weight", (H,), "f32", None),
            (p + "ffn_gate.weight", (ff, H), wtype, None),
            (p + "ffn_up.weight", (ff, H), wtype, None),
            (p + "ffn_down.weight", (H, ff), wtype, None),
        ]
    plan.append(("output_norm.weight", (H,), "f32", None))
    if not tied:
        plan.append(("output.weight", (V, H), otype, None))

    w = GGUFWriter(args.out, "llama")
    w.add_name(args.name or f"random-{os.path.splitext(os.path.basename(args.config))[0]}-{wtype}")
    w.add_file_type(TYPES[wtype][4])
    w.add_quantization_version(gguf.GGML_QUANT_VERSION)
    w.add_context_length(ctx)
    w.add_embedding_length(H)
    w.add_block_count(L)
    w.add_feed_forward_length(ff)
    w.add_head_count(nh)
    w.add_head_count_kv(nkv)
    w.add_key_length(hd)
    w.add_value_length(hd)
    w.add_rope_freq_base(theta)
    w.add_layer_norm_rms_eps(eps)
    w.add_rope_dimension_count(hd)
    w.add_vocab_size(V)
    tokens, scores, ttypes = build_vocab(V)
    w.add_tokenizer_model("llama")
    w.add_tokenizer_pre("default")
    w.add_token_list(tokens)
    w.add_token_scores(scores.tolist())
    w.add_token_types(ttypes.tolist())
    w.add_bos_token_id(1)
    w.add_eos_token_id(2)
    w.add_unk_token_id(0)
    w.add_add_bos_token(True)
    w.add_add_eos_token(False)

    total = 0
    for name, shape, t, data in plan:
        n = int(np.prod(shape))
        if t == "f32":
            w.add_tensor_info(name, shape, np.dtype(np.float32), n * 4)
            total += n * 4
        else:
            qt, be, bb, _, _ = TYPES[t]
            assert shape[-1] % be == 0, f"{name}: row size {shape[-1]} not a multiple of {be} for {t}"
            nbytes = n // be * bb
            # dtype != uint8 => shape is taken as element shape (not byte shape)
            w.add_tensor_info(name, shape, np.dtype(np.float32), nbytes, raw_dtype=qt)
            total += nbytes

    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_ti_data_to_file()
    fout = w.fout[0]
    w.write_padding(fout, fout.tell())
    t1 = time.time()
    for name, shape, t, data in plan:
        n = int(np.prod(shape))
        if t == "f32":
            if data is None:
                data = (1.0 + 0.05 * rng.standard_normal(n, dtype=np.float32)).astype(np.float32)
            data = np.ascontiguousarray(data, dtype=np.float32)
            fout.write(data.tobytes())
            nbytes = data.nbytes
        else:
            nbytes = pool(t).write(fout, n)
        w.write_padding(fout, nbytes)
    w.close()
    t2 = time.time()
    size = os.path.getsize(args.out)
    print(f"wrote {args.out}: {len(plan)} tensors, {size/1e9:.3f} GB (tensor data {total/1e9:.3f} GB), "
          f"type={wtype} output={otype} tied={tied}; header {t1-t0:.1f}s, data {t2-t1:.1f}s, total {t2-t0:.1f}s",
          flush=True)


if __name__ == "__main__":
    main()
