//! The GGUF reader against files the writer makes: the fixtures exported as llama.cpp
//! would (names, permutation and config survive the round trip), broken files (every
//! rejection names the file and the place, and nothing panics), and the real SmolLM2 file
//! when it is on this machine.

use super::write::{gguf_from_checkpoint, ExportTypes, GgufWriter};
use super::{GgmlType, GgufFile, MetaValue};
use crate::hf::HfModel;
use mkc_ir::quant::BlockFormat;
use mkc_ir::weights::WeightSource;
use std::path::{Path, PathBuf};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/fixtures")
        .join(name)
}

/// A path for a test's file in the temporary folder, unique to this process and test.
fn temp(name: &str) -> PathBuf {
    std::env::temp_dir().join(format!("mkc-gguf-{}-{name}.gguf", std::process::id()))
}

const BF16: ExportTypes = ExportTypes {
    float: GgmlType::BF16,
    quantize: None,
};

/// llama-tiny (bf16, tied embeddings, GQA: 4 heads, 2 kv heads) as llama.cpp would write it.
fn llama_tiny() -> GgufWriter {
    let m = HfModel::open(&fixture("llama-tiny")).unwrap();
    gguf_from_checkpoint(&m, BF16).unwrap()
}

/// Writes `bytes` to a test file.
fn file(name: &str, bytes: &[u8]) -> PathBuf {
    let p = temp(name);
    std::fs::write(&p, bytes).unwrap();
    p
}

/// Why `HfModel::open` refuses the file (it must), checked to name the file; the file is
/// removed.
fn refused(path: &Path) -> String {
    let r = HfModel::open(path);
    std::fs::remove_file(path).unwrap();
    let e = match r {
        Ok(_) => panic!("{} was accepted", path.display()),
        Err(e) => e,
    };
    assert!(
        e.contains(&path.display().to_string()),
        "no file name in: {e}"
    );
    e
}

fn has(e: &str, parts: &[&str]) {
    for p in parts {
        assert!(e.contains(p), "'{p}' is not in: {e}");
    }
}

fn find(hay: &[u8], needle: &[u8]) -> usize {
    hay.windows(needle.len())
        .position(|w| w == needle)
        .unwrap_or_else(|| panic!("{:?} not found", String::from_utf8_lossy(needle)))
}

fn put_u64(b: &mut [u8], at: usize, v: u64) {
    b[at..at + 8].copy_from_slice(&v.to_le_bytes());
}

/// Where tensor `name`'s data offset is in `bytes` (its info: name, n_dims, dims, type).
fn offset_field(bytes: &[u8], name: &str, n_dims: usize) -> usize {
    let mut needle = (name.len() as u64).to_le_bytes().to_vec();
    needle.extend_from_slice(name.as_bytes());
    find(bytes, &needle) + needle.len() + 4 + 8 * n_dims + 4
}

#[test]
fn llama_tiny_round_trips_exactly() {
    let st = HfModel::open(&fixture("llama-tiny")).unwrap();
    let path = temp("llama-roundtrip");
    llama_tiny().write(&path).unwrap();
    let g = HfModel::open(&path).unwrap();
    std::fs::remove_file(&path).unwrap();
    let (a, b) = (&st.config, &g.config);
    assert_eq!(
        (
            a.num_layers,
            a.hidden_size,
            a.intermediate_size,
            a.vocab_size
        ),
        (
            b.num_layers,
            b.hidden_size,
            b.intermediate_size,
            b.vocab_size
        )
    );
    assert_eq!(
        (a.num_heads, a.num_kv_heads, a.head_dim, a.rope_theta),
        (b.num_heads, b.num_kv_heads, b.head_dim, b.rope_theta)
    );
    assert_eq!(
        (a.tie_word_embeddings, a.qk_norm, a.qkv_bias),
        (b.tie_word_embeddings, b.qk_norm, b.qkv_bias)
    );
    // GGUF stores the epsilon as float32.
    assert_eq!(b.rms_norm_eps, a.rms_norm_eps as f32 as f64);
    let (sw, gw) = (st.checkpoint.unwrap(), g.checkpoint.unwrap());
    let gguf = gw.gguf().unwrap();
    assert_eq!(gguf.arch, "llama");
    // q/k rows are stored permuted (so not as in the checkpoint) and read back in place.
    let q = gguf.file.tensor("blk.0.attn_q.weight").unwrap();
    let st_q = sw.raw("model.layers.0.self_attn.q_proj.weight").unwrap();
    assert_eq!(q.dims, vec![128, 128]);
    assert_ne!(gguf.file.data(q), &st_q.bytes[..]);
    for name in sw.names() {
        let (x, y) = (sw.raw(name).unwrap(), gw.raw(name).unwrap());
        assert_eq!(x.shape, y.shape, "{name}");
        if y.elem == x.elem {
            assert_eq!(x.bytes, y.bytes, "{name}");
        } else {
            // 1-D tensors are F32 in GGUF, as llama.cpp writes them: the same values.
            assert_eq!(y.elem, mkc_ir::ElemType::F32, "{name}");
            let f: Vec<f32> = y
                .bytes
                .chunks(4)
                .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
                .collect();
            let h: Vec<f32> = x
                .bytes
                .chunks(2)
                .map(|c| half::bf16::from_le_bytes([c[0], c[1]]).to_f32())
                .collect();
            assert_eq!(f, h, "{name}");
        }
    }
}

#[test]
fn qwen3_tiny_round_trips_unpermuted() {
    let st = HfModel::open(&fixture("qwen3-tiny")).unwrap();
    let path = temp("qwen3-roundtrip");
    gguf_from_checkpoint(&st, BF16)
        .unwrap()
        .write(&path)
        .unwrap();
    let g = HfModel::open(&path).unwrap();
    std::fs::remove_file(&path).unwrap();
    assert!(g.config.qk_norm && !g.config.tie_word_embeddings);
    // head_dim 64 with hidden 128 and 4 heads: carried by attention.key_length.
    assert_eq!(
        (g.config.head_dim, g.config.model_type.as_str()),
        (64, "qwen3")
    );
    let (sw, gw) = (st.checkpoint.unwrap(), g.checkpoint.unwrap());
    // arch qwen3 is not permuted: the file holds the checkpoint's rows.
    let gguf = gw.gguf().unwrap();
    let q = gguf.file.tensor("blk.1.attn_q.weight").unwrap();
    let st_q = sw.raw("model.layers.1.self_attn.q_proj.weight").unwrap();
    assert_eq!(gguf.file.data(q), &st_q.bytes[..]);
    assert!(gguf.file.tensor("blk.1.attn_k_norm.weight").is_some());
    assert!(gguf.file.tensor("output.weight").is_some());
    assert_eq!(sw.names().len(), gw.names().len());
}

#[test]
fn quantized_export_reads_back_quantized() {
    let m = HfModel::open(&fixture("llama-tiny")).unwrap();
    let types = ExportTypes {
        float: GgmlType::F16,
        quantize: Some(BlockFormat::Q8_0),
    };
    let w = gguf_from_checkpoint(&m, types).unwrap();
    let path = temp("q8");
    w.write(&path).unwrap();
    let f = GgufFile::open(&path).unwrap();
    std::fs::remove_file(&path).unwrap();
    let ty = |n: &str| f.tensor(n).unwrap().ty;
    assert_eq!(ty("token_embd.weight"), GgmlType::Block(BlockFormat::Q8_0));
    assert_eq!(
        ty("blk.1.ffn_down.weight"),
        GgmlType::Block(BlockFormat::Q8_0)
    );
    assert_eq!(ty("blk.1.ffn_norm.weight"), GgmlType::F32);
    assert_eq!(
        f.get("general.quantization_version"),
        Some(&MetaValue::U32(2))
    );
}

#[test]
fn exporting_what_gguf_cannot_hold_is_refused() {
    let m = HfModel::open(&fixture("llama3-tiny")).unwrap();
    let e = gguf_from_checkpoint(&m, BF16).err().unwrap();
    has(&e, &["llama3-tiny", "rope scaling"]);
    let m = HfModel::open(&fixture("llama-tiny")).unwrap();
    let quant = ExportTypes {
        float: GgmlType::Block(BlockFormat::Q8_0),
        quantize: None,
    };
    has(
        &gguf_from_checkpoint(&m, quant).err().unwrap(),
        &["Q8_0 is not a float type"],
    );
}

/// A small valid llama file: every header, metadata and tensor-info field kind, for the
/// byte-level tests.
fn small() -> GgufWriter {
    let mut w = GgufWriter::new();
    w.meta("general.architecture", MetaValue::Str("llama".into()))
        .meta("general.name", MetaValue::Str("tiny".into()))
        .meta(
            "tokenizer.ggml.tokens",
            MetaValue::Array(vec![MetaValue::Str("a".into()), MetaValue::Str("b".into())]),
        )
        .meta("llama.block_count", MetaValue::U32(1))
        .tensor("token_embd.weight", GgmlType::F32, &[4, 2], vec![1; 32])
        .tensor("output_norm.weight", GgmlType::F16, &[4], vec![2; 8]);
    w
}

#[test]
fn truncated_files_name_the_place() {
    let w = llama_tiny();
    let bytes = w.to_bytes().unwrap();
    let l = w.layout().unwrap();
    let open = |name: &str, len: usize| {
        let p = file(name, &bytes[..len]);
        let e = GgufFile::open(&p).err().unwrap();
        refused(&p);
        e
    };
    has(
        &open("cut-magic", 2),
        &["at byte 0", "the magic number", "truncated?"],
    );
    has(
        &open("cut-header", 10),
        &["at byte 8", "the tensor count", "truncated?"],
    );
    // The last metadata value ("llama.vocab_size", a u32) cut short.
    let e = open("cut-metadata", l.tensor_infos - 2);
    has(
        &e,
        &[
            &format!("at byte {}", l.tensor_infos - 4),
            "'llama.vocab_size'",
        ],
    );
    // The metadata count alone says the rest cannot hold it.
    has(
        &open("cut-metadata-count", l.metadata + 20),
        &["metadata count is 13", "corrupt or truncated"],
    );
    // Inside the last tensor info's dimensions: file infos then end of file.
    let last = offset_field(&bytes, "output_norm.weight", 1);
    let e = open("cut-infos", last - 9);
    has(
        &e,
        &[
            &format!("at byte {}", last - 12),
            "a tensor dimension",
            "truncated?",
        ],
    );
    // Inside the data: the tensor whose bytes are cut is named.
    let at = offset_field(&bytes, "blk.0.attn_v.weight", 2);
    let v = u64::from_le_bytes(bytes[at..at + 8].try_into().unwrap()) as usize;
    let e = open("cut-data", l.data + v + 3);
    has(
        &e,
        &[
            "tensor 'blk.0.attn_v.weight'",
            "run past the end of the file",
        ],
    );
}

/// Every cut of a small file before its last data byte, and every byte of its header,
/// metadata and infos flipped: an error or a file, never a panic.
#[test]
fn no_cut_or_flipped_byte_panics() {
    let w = small();
    let bytes = w.to_bytes().unwrap();
    let l = w.layout().unwrap();
    let end = l.data + l.offsets[1] as usize + 8;
    let p = temp("fuzz");
    for len in 0..end {
        std::fs::write(&p, &bytes[..len]).unwrap();
        let e = GgufFile::open(&p)
            .err()
            .unwrap_or_else(|| panic!("cut at {len} accepted"));
        assert!(e.contains(&p.display().to_string()), "{e}");
    }
    for at in 0..l.data {
        let mut b = bytes.clone();
        b[at] ^= 0xFF;
        std::fs::write(&p, &b).unwrap();
        if let Err(e) = GgufFile::open(&p) {
            assert!(e.contains(&p.display().to_string()), "{e}");
        }
        let _ = HfModel::open(&p);
    }
    std::fs::remove_file(&p).unwrap();
}

#[test]
fn wrong_magic_and_versions_are_refused() {
    let mut bytes = small().to_bytes().unwrap();
    bytes[..4].copy_from_slice(b"GGML");
    // The extension makes it a GGUF candidate; the magic then refuses it.
    has(
        &refused(&file("magic", &bytes)),
        &["not a GGUF file", "\"GGUF\""],
    );
    for v in [1u32, 4] {
        let mut bytes = small().to_bytes().unwrap();
        bytes[4..8].copy_from_slice(&v.to_le_bytes());
        let e = refused(&file(&format!("version{v}"), &bytes));
        has(
            &e,
            &[
                "at byte 8",
                &format!("GGUF version {v}"),
                "versions 2 and 3",
            ],
        );
    }
}

#[test]
fn unreadable_tensor_types_are_named() {
    let mut w = small();
    w.tensor_with_type_id("output_norm.weight", 99, &[4], vec![0; 8]);
    let e = refused(&file("type99", &w.to_bytes().unwrap()));
    has(&e, &["tensor 'output_norm.weight'", "unknown ggml type 99"]);
    let mut w = small();
    w.tensor_with_type_id("output_norm.weight", 13, &[256], vec![0; 176]);
    let e = refused(&file("q5k", &w.to_bytes().unwrap()));
    has(
        &e,
        &[
            "tensor 'output_norm.weight'",
            "Q5_K (ggml type 13)",
            "does not read",
        ],
    );
}

#[test]
fn offsets_out_of_range_or_unaligned_are_refused() {
    // The last tensor claims more values than its bytes.
    let mut w = small();
    w.tensor("output_norm.weight", GgmlType::F32, &[64], vec![0; 8]);
    let e = refused(&file("short", &w.to_bytes().unwrap()));
    has(
        &e,
        &[
            "tensor 'output_norm.weight'",
            "256 bytes at data offset 32",
            "run past the end",
        ],
    );
    let bytes = small().to_bytes().unwrap();
    let at = offset_field(&bytes, "token_embd.weight", 2);
    for (name, off, want) in [
        ("far", 1u64 << 40, "run past the end"),
        ("overflow", u64::MAX - 31, "run past the end"),
        (
            "unaligned",
            8,
            "data offset 8 is not a multiple of the alignment 32",
        ),
    ] {
        let mut b = bytes.clone();
        put_u64(&mut b, at, off);
        has(
            &refused(&file(name, &b)),
            &["tensor 'token_embd.weight'", want],
        );
    }
}

#[test]
fn implausible_shapes_are_refused() {
    let q8 = GgmlType::Block(BlockFormat::Q8_0);
    let cases: [(&str, GgmlType, &[u64], &str); 6] = [
        (
            "partial-block",
            q8,
            &[48, 2],
            "blocks of 32 values, but its rows have 48",
        ),
        (
            "zero-dim",
            GgmlType::F32,
            &[4, 0],
            "[4, 0] (innermost first) include a 0",
        ),
        (
            "overflow",
            GgmlType::F32,
            &[u64::MAX / 2, 4],
            "more than 2^40 values",
        ),
        (
            "huge",
            GgmlType::F32,
            &[1 << 21, 1 << 20],
            "more than 2^40 values",
        ),
        (
            "no-dims",
            GgmlType::F32,
            &[],
            "has 0 dimensions (ggml allows 1 to 4)",
        ),
        (
            "five-dims",
            GgmlType::F32,
            &[1, 1, 1, 1, 1],
            "has 5 dimensions",
        ),
    ];
    for (name, ty, dims, want) in cases {
        let mut w = small();
        w.tensor("output_norm.weight", ty, dims, vec![0; 8]);
        has(
            &refused(&file(name, &w.to_bytes().unwrap())),
            &["'output_norm.weight'", want],
        );
    }
}

#[test]
fn metadata_of_the_wrong_type_is_named() {
    for (key, v, want) in [
        (
            "llama.block_count",
            MetaValue::Str("2".into()),
            "is a string (\"2\"), expected an integer",
        ),
        (
            "llama.rope.freq_base",
            MetaValue::Str("1e4".into()),
            "expected a finite number",
        ),
        (
            "llama.embedding_length",
            MetaValue::I32(-128),
            "-128 is outside 0..=",
        ),
        (
            "general.architecture",
            MetaValue::U32(1),
            "is a uint32 (1), expected a string",
        ),
        (
            "general.alignment",
            MetaValue::U32(48),
            "must be a power of two",
        ),
    ] {
        let mut w = llama_tiny();
        w.meta(key, v);
        let e = refused(&file(&key.replace('.', "-"), &w.to_bytes().unwrap()));
        has(&e, &[&format!("'{key}'"), want]);
    }
}

/// Config errors name the metadata key a value came from, not config.json's.
#[test]
fn metadata_values_the_model_cannot_have_are_named() {
    for (key, v, want) in [
        (
            "block_count",
            0,
            "'llama.block_count' must be a positive integer",
        ),
        (
            "block_count",
            u32::MAX,
            "'llama.block_count' = 4294967295 is implausibly large",
        ),
        (
            "attention.head_count",
            3,
            "'llama.attention.head_count' (3) is not a multiple of \
             'llama.attention.head_count_kv' (2)",
        ),
        (
            "attention.key_length",
            0,
            "'llama.attention.key_length' must be a positive integer",
        ),
        (
            "vocab_size",
            0,
            "'llama.vocab_size' must be a positive integer",
        ),
        (
            "rope.dimension_count",
            16,
            "rope over 16 of each head's 32 dimensions",
        ),
    ] {
        let mut w = llama_tiny();
        w.meta(&format!("llama.{key}"), MetaValue::U32(v));
        let e = refused(&file(
            &format!("value-{}", key.replace('.', "-")),
            &w.to_bytes().unwrap(),
        ));
        has(&e, &[want]);
    }
}

#[test]
fn huge_lengths_and_counts_are_refused_before_allocating() {
    let bytes = small().to_bytes().unwrap();
    // The length of the string value "tiny" of general.name.
    let at = find(&bytes, b"\x04\0\0\0\0\0\0\0tiny");
    let mut b = bytes.clone();
    put_u64(&mut b, at, u64::MAX / 2);
    let e = refused(&file("huge-string", &b));
    has(
        &e,
        &[
            &format!("at byte {}", at + 8),
            "inside the value of 'general.name'",
        ],
    );
    // The item count of tokenizer.ggml.tokens (after the key, type 9 and item type 8).
    let at = find(&bytes, b"tokenizer.ggml.tokens") + 21 + 8;
    let mut b = bytes.clone();
    put_u64(&mut b, at, 1 << 60);
    let e = refused(&file("huge-array", &b));
    has(
        &e,
        &[
            "the length of 'tokenizer.ggml.tokens' is 1152921504606846976",
            "corrupt or truncated",
        ],
    );
    // An array of 4-byte items whose count only 1-byte items could fit in the rest.
    let mut w = small();
    w.meta("x.arr", MetaValue::Array(vec![MetaValue::U32(1); 4]));
    let mut b = w.to_bytes().unwrap();
    let at = find(&b, b"x.arr") + 5 + 8;
    let n = (b.len() - at - 8) as u64 / 2;
    put_u64(&mut b, at, n);
    let e = refused(&file("u32-array", &b));
    has(
        &e,
        &[&format!(
            "at byte {}: the length of 'x.arr' is {n}, more than",
            at + 8
        )],
    );
    // Tensor and metadata counts in the header.
    let mut b = bytes.clone();
    put_u64(&mut b, 8, u64::MAX);
    has(
        &refused(&file("huge-tensors", &b)),
        &["the tensor count is 18446744073709551615"],
    );
    let mut b = bytes.clone();
    put_u64(&mut b, 16, u64::MAX);
    has(
        &refused(&file("huge-kv", &b)),
        &["at byte 24", "the metadata count is 18446744073709551615"],
    );
}

/// A second key or tensor written under a name of the same length, renamed in the bytes.
#[test]
fn duplicates_are_refused() {
    let mut w = small();
    w.meta("general.nam_", MetaValue::Str("x".into()));
    let mut b = w.to_bytes().unwrap();
    let at = find(&b, b"general.nam_");
    b[at..at + 12].copy_from_slice(b"general.name");
    let e = refused(&file("dup-key", &b));
    has(&e, &["metadata key 'general.name' appears twice"]);
    let mut w = small();
    w.tensor("token_embd.weigh_", GgmlType::F32, &[4], vec![0; 16]);
    let mut b = w.to_bytes().unwrap();
    let at = find(&b, b"token_embd.weigh_");
    b[at..at + 17].copy_from_slice(b"token_embd.weight");
    let e = refused(&file("dup-tensor", &b));
    has(&e, &["tensor 'token_embd.weight' appears twice"]);
}

#[test]
fn tensors_the_model_does_not_have_are_named() {
    let mut w = llama_tiny();
    assert!(w.remove_tensor("blk.1.ffn_up.weight"));
    let e = refused(&file("missing", &w.to_bytes().unwrap()));
    has(
        &e,
        &["missing tensor 'model.layers.1.mlp.up_proj.weight' (shape [384, 128])"],
    );
    let mut w = llama_tiny();
    w.tensor(
        "blk.5.attn_norm.weight",
        GgmlType::F32,
        &[128],
        vec![0; 512],
    );
    let e = refused(&file("unexpected", &w.to_bytes().unwrap()));
    has(
        &e,
        &["unexpected tensor 'model.layers.5.input_layernorm.weight' for a llama model"],
    );
    let mut w = llama_tiny();
    w.tensor(
        "blk.0.ffn_gate_exps.weight",
        GgmlType::F32,
        &[128],
        vec![0; 512],
    );
    let e = refused(&file("unknown", &w.to_bytes().unwrap()));
    has(
        &e,
        &["tensor 'blk.0.ffn_gate_exps.weight' is not one a llama model has"],
    );
}

#[test]
fn unsupported_architectures_are_named() {
    let mut w = llama_tiny();
    w.meta("general.architecture", MetaValue::Str("gpt2".into()));
    let e = refused(&file("gpt2", &w.to_bytes().unwrap()));
    has(
        &e,
        &["architecture 'gpt2' is not one mkc reads from GGUF (llama, qwen2, qwen3)"],
    );
    let mut w = llama_tiny();
    w.remove_meta("general.architecture");
    has(
        &refused(&file("no-arch", &w.to_bytes().unwrap())),
        &["no 'general.architecture'"],
    );
}

/// The real SmolLM2-135M-Instruct Q4_1 file (llama.cpp's conversion), when present: its
/// header and every tensor info read, and metadata as gguf-py reads it (values taken from
/// `gguf.GGUFReader` on the same file).
#[test]
fn smollm2_gguf_reads_as_gguf_py_does() {
    let path = std::env::var_os("MKC_SMOLLM2_GGUF").map_or_else(
        || PathBuf::from("/root/.cache/mkc/models/SmolLM2-135M-Instruct.Q4_1.gguf"),
        PathBuf::from,
    );
    if !path.is_file() {
        eprintln!(
            "skipped: {} is absent (set MKC_SMOLLM2_GGUF to SmolLM2-135M-Instruct.Q4_1.gguf)",
            path.display()
        );
        return;
    }
    let f = GgufFile::open(&path).unwrap();
    assert_eq!((f.version, f.tensors.len(), f.metadata.len()), (3, 272, 33));
    let u32s = [
        ("llama.block_count", 30),
        ("llama.context_length", 8192),
        ("llama.embedding_length", 576),
        ("llama.feed_forward_length", 1536),
        ("llama.attention.head_count", 9),
        ("llama.attention.head_count_kv", 3),
        ("llama.vocab_size", 49152),
        ("llama.rope.dimension_count", 64),
        ("general.file_type", 3),
        ("general.quantization_version", 2),
        ("tokenizer.ggml.bos_token_id", 1),
        ("tokenizer.ggml.padding_token_id", 2),
    ];
    for (k, v) in u32s {
        assert_eq!(f.get(k), Some(&MetaValue::U32(v)), "{k}");
    }
    assert_eq!(f.string("general.architecture").unwrap(), Some("llama"));
    assert_eq!(
        f.string("general.name").unwrap(),
        Some("Smollm2 135M 8k Lc100K Mix1 Ep2")
    );
    assert_eq!(
        f.get("llama.rope.freq_base"),
        Some(&MetaValue::F32(100000.0))
    );
    let eps = f.get("llama.attention.layer_norm_rms_epsilon");
    assert_eq!(eps.and_then(MetaValue::as_f64), Some(9.999999747378752e-06));
    assert_eq!(f.bool("tokenizer.ggml.add_bos_token").unwrap(), Some(false));
    let len = |k: &str| match f.get(k) {
        Some(MetaValue::Array(a)) => a.len(),
        _ => panic!("{k}"),
    };
    assert_eq!(
        (len("tokenizer.ggml.tokens"), len("tokenizer.ggml.merges")),
        (49152, 48900)
    );
    // Tensor infos: type, dims (innermost first), absolute data offset, bytes.
    let t = |n: &str| f.tensor(n).unwrap();
    let q8 = GgmlType::Block(BlockFormat::Q8_0);
    let q41 = GgmlType::Block(BlockFormat::Q4_1);
    let e = t("token_embd.weight");
    assert_eq!(
        (e.ty, e.dims.clone(), e.offset, e.bytes),
        (q8, vec![576, 49152], 1785664, 30081024)
    );
    let e = t("blk.0.attn_norm.weight");
    assert_eq!(
        (e.ty, e.dims.clone(), e.offset, e.bytes),
        (GgmlType::F32, vec![576], 31866688, 2304)
    );
    let e = t("blk.0.ffn_down.weight");
    assert_eq!(
        (e.ty, e.dims.clone(), e.offset, e.bytes),
        (q41, vec![1536, 576], 31868992, 552960)
    );
    let e = t("output_norm.weight");
    assert_eq!((e.ty, e.offset), (GgmlType::F32, 98360128));
    let count = |ty| f.tensors.iter().filter(|(_, i)| i.ty == ty).count();
    assert_eq!((count(q41), count(GgmlType::F32), count(q8)), (210, 61, 1));
    let m = HfModel::open(&path).unwrap();
    assert_eq!((m.config.num_layers, m.config.head_dim), (30, 64));
    assert!(m.config.tie_word_embeddings);
}
