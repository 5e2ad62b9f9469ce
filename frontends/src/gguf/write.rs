//! Writes GGUF v3 files: metadata and tensors, aligned; for tests and for exporting
//! quantized models.
//!
//! [`GgufWriter`] lays a file out as ggml's `docs/gguf.md` specifies (little-endian):
//! the header (magic, version 3, tensor count, metadata count), the key/value pairs, the
//! tensor infos (name, dimension count, dimensions innermost first, ggml type, data offset
//! relative to the data section), zero padding to the alignment (`general.alignment`, else
//! 32), then each tensor's bytes at an aligned offset, zero-padded to the alignment. It
//! writes what it is given and checks nothing about tensors (shapes, types and byte counts
//! are the reader's to check, so tests can write broken files with it too).
//!
//! [`gguf_from_checkpoint`] writes a llama-family Hugging Face checkpoint the way
//! llama.cpp's `convert_hf_to_gguf.py` does: llama.cpp's tensor names and metadata keys,
//! q/k rows permuted for arch `llama`, 1-D tensors in F32, matrices in the chosen type.

use super::file::{GgmlType, MetaValue, MAGIC};
use super::gguf_name;
use crate::config::RopeScaling;
use crate::hf::HfModel;
use crate::quantize::quantizable;
use mkc_ir::quant::BlockFormat;
use mkc_ir::tensor::{Data, Tensor};
use mkc_ir::weights::WeightSource;
use mkc_ir::TensorType;
use std::path::Path;

/// The GGUF version the writer emits.
const VERSION: u32 = 3;
/// Data alignment when `general.alignment` is not set (the spec's default).
const DEFAULT_ALIGNMENT: u64 = 32;

impl GgmlType {
    /// ggml's `enum ggml_type` id.
    pub fn id(self) -> u32 {
        match self {
            GgmlType::F32 => 0,
            GgmlType::F16 => 1,
            GgmlType::BF16 => 30,
            GgmlType::Block(f) => f.ggml_type(),
        }
    }
}

impl MetaValue {
    /// GGUF's `gguf_metadata_value_type` id of the value.
    pub fn type_id(&self) -> u32 {
        match self {
            MetaValue::U8(_) => 0,
            MetaValue::I8(_) => 1,
            MetaValue::U16(_) => 2,
            MetaValue::I16(_) => 3,
            MetaValue::U32(_) => 4,
            MetaValue::I32(_) => 5,
            MetaValue::F32(_) => 6,
            MetaValue::Bool(_) => 7,
            MetaValue::Str(_) => 8,
            MetaValue::Array(_) => 9,
            MetaValue::U64(_) => 10,
            MetaValue::I64(_) => 11,
            MetaValue::F64(_) => 12,
        }
    }
}

/// One tensor to write.
struct Entry {
    name: String,
    type_id: u32,
    dims: Vec<u64>,
    bytes: Vec<u8>,
}

/// A GGUF v3 file being put together: metadata and tensors in the order given.
#[derive(Default)]
pub struct GgufWriter {
    metadata: Vec<(String, MetaValue)>,
    tensors: Vec<Entry>,
}

/// Where the sections of [`GgufWriter::to_bytes`]' output start (byte offsets).
#[derive(Clone, Debug, PartialEq)]
pub struct Layout {
    /// The first key/value pair (the header is the 24 bytes before it).
    pub metadata: usize,
    /// The first tensor info.
    pub tensor_infos: usize,
    /// The data section (aligned).
    pub data: usize,
    /// Each tensor's offset in the data section, in the order given.
    pub offsets: Vec<u64>,
    /// The whole file.
    pub len: usize,
}

impl GgufWriter {
    pub fn new() -> GgufWriter {
        GgufWriter::default()
    }

    /// Sets metadata `key` (replacing its value, in place, if it is already set).
    pub fn meta(&mut self, key: &str, value: MetaValue) -> &mut Self {
        match self.metadata.iter_mut().find(|(k, _)| k == key) {
            Some(kv) => kv.1 = value,
            None => self.metadata.push((key.to_string(), value)),
        }
        self
    }

    /// Removes metadata `key`; whether it was set.
    pub fn remove_meta(&mut self, key: &str) -> bool {
        let n = self.metadata.len();
        self.metadata.retain(|(k, _)| k != key);
        self.metadata.len() != n
    }

    /// Adds tensor `name` (replacing one of that name, in place): `dims` in ggml's order
    /// (innermost first, the reverse of a row-major shape), `bytes` as the type stores them.
    pub fn tensor(&mut self, name: &str, ty: GgmlType, dims: &[u64], bytes: Vec<u8>) -> &mut Self {
        self.tensor_with_type_id(name, ty.id(), dims, bytes)
    }

    /// [`GgufWriter::tensor`] with a raw ggml type id, for types mkc does not read.
    pub fn tensor_with_type_id(
        &mut self,
        name: &str,
        type_id: u32,
        dims: &[u64],
        bytes: Vec<u8>,
    ) -> &mut Self {
        let e = Entry {
            name: name.to_string(),
            type_id,
            dims: dims.to_vec(),
            bytes,
        };
        match self.tensors.iter_mut().find(|t| t.name == name) {
            Some(t) => *t = e,
            None => self.tensors.push(e),
        }
        self
    }

    /// Removes tensor `name`; whether it was there.
    pub fn remove_tensor(&mut self, name: &str) -> bool {
        let n = self.tensors.len();
        self.tensors.retain(|t| t.name != name);
        self.tensors.len() != n
    }

    /// The alignment of the data: `general.alignment` if it is a positive integer, else 32.
    pub fn alignment(&self) -> u64 {
        self.metadata
            .iter()
            .find(|(k, _)| k == "general.alignment")
            .and_then(|(_, v)| v.as_int())
            .and_then(|a| u64::try_from(a).ok())
            .filter(|&a| a > 0)
            .unwrap_or(DEFAULT_ALIGNMENT)
    }

    /// Where each section lands in [`GgufWriter::to_bytes`]' output.
    pub fn layout(&self) -> Result<Layout, String> {
        self.encode().map(|(_, l)| l)
    }

    /// The file's bytes. Fails only for metadata GGUF cannot express (an array whose
    /// items have different types).
    pub fn to_bytes(&self) -> Result<Vec<u8>, String> {
        self.encode().map(|(b, _)| b)
    }

    /// Writes the file to `path`.
    pub fn write(&self, path: &Path) -> Result<(), String> {
        let bytes = self.to_bytes()?;
        std::fs::write(path, bytes).map_err(|e| format!("cannot write {}: {e}", path.display()))
    }

    fn encode(&self) -> Result<(Vec<u8>, Layout), String> {
        let align = self.alignment();
        let pad = |out: &mut Vec<u8>| {
            let len = out.len() as u64;
            out.resize(len.div_ceil(align).saturating_mul(align) as usize, 0);
        };
        let mut out = Vec::new();
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&VERSION.to_le_bytes());
        out.extend_from_slice(&(self.tensors.len() as u64).to_le_bytes());
        out.extend_from_slice(&(self.metadata.len() as u64).to_le_bytes());
        let metadata = out.len();
        for (key, v) in &self.metadata {
            put_str(&mut out, key);
            out.extend_from_slice(&v.type_id().to_le_bytes());
            put_value(&mut out, v).map_err(|e| format!("metadata '{key}': {e}"))?;
        }
        let tensor_infos = out.len();
        let mut offsets = Vec::with_capacity(self.tensors.len());
        let mut at = 0u64;
        for t in &self.tensors {
            put_str(&mut out, &t.name);
            out.extend_from_slice(&(t.dims.len() as u32).to_le_bytes());
            for d in &t.dims {
                out.extend_from_slice(&d.to_le_bytes());
            }
            out.extend_from_slice(&t.type_id.to_le_bytes());
            out.extend_from_slice(&at.to_le_bytes());
            offsets.push(at);
            at = (at + t.bytes.len() as u64).div_ceil(align) * align;
        }
        pad(&mut out);
        let data = out.len();
        for t in &self.tensors {
            out.extend_from_slice(&t.bytes);
            pad(&mut out);
        }
        let len = out.len();
        let layout = Layout {
            metadata,
            tensor_infos,
            data,
            offsets,
            len,
        };
        Ok((out, layout))
    }
}

fn put_str(out: &mut Vec<u8>, s: &str) {
    out.extend_from_slice(&(s.len() as u64).to_le_bytes());
    out.extend_from_slice(s.as_bytes());
}

/// A value's bytes (its type id is written by the caller: the key's, or the array's).
fn put_value(out: &mut Vec<u8>, v: &MetaValue) -> Result<(), String> {
    match v {
        MetaValue::U8(x) => out.push(*x),
        MetaValue::I8(x) => out.push(*x as u8),
        MetaValue::U16(x) => out.extend_from_slice(&x.to_le_bytes()),
        MetaValue::I16(x) => out.extend_from_slice(&x.to_le_bytes()),
        MetaValue::U32(x) => out.extend_from_slice(&x.to_le_bytes()),
        MetaValue::I32(x) => out.extend_from_slice(&x.to_le_bytes()),
        MetaValue::U64(x) => out.extend_from_slice(&x.to_le_bytes()),
        MetaValue::I64(x) => out.extend_from_slice(&x.to_le_bytes()),
        MetaValue::F32(x) => out.extend_from_slice(&x.to_le_bytes()),
        MetaValue::F64(x) => out.extend_from_slice(&x.to_le_bytes()),
        MetaValue::Bool(b) => out.push(*b as u8),
        MetaValue::Str(s) => put_str(out, s),
        MetaValue::Array(items) => {
            // An empty array's item type is not known; uint8 reads back as the same value.
            let ty = items.first().map_or(0, MetaValue::type_id);
            if let Some(odd) = items.iter().find(|i| i.type_id() != ty) {
                return Err(format!(
                    "an array of {} holds a {} (GGUF arrays have one item type)",
                    items[0].type_name(),
                    odd.type_name()
                ));
            }
            out.extend_from_slice(&ty.to_le_bytes());
            out.extend_from_slice(&(items.len() as u64).to_le_bytes());
            for i in items {
                put_value(out, i)?;
            }
        }
    }
    Ok(())
}

/// The types [`gguf_from_checkpoint`] stores tensors in.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ExportTypes {
    /// Matrices' type when not quantized: F32, F16 or BF16.
    pub float: GgmlType,
    /// Projections, the embedding and the LM head in this block format where their rows
    /// are whole blocks ([`quantizable`]); the others stay `float`.
    pub quantize: Option<BlockFormat>,
}

/// The GGUF file llama.cpp's converter would write for `model` (a llama, mistral, qwen2 or
/// qwen3 checkpoint with weights), as a writer that more can be added to: llama.cpp's
/// tensor names, its `{arch}.*` hyper-parameter keys (mistral is arch `llama`), q/k rows
/// (and biases) of each head permuted for arch `llama` (the two rope halves interleaved, as
/// `LlamaModel.permute` does), 1-D tensors (norms, biases) in F32 and matrices in `types`.
/// No tokenizer is written. Rope scaling and sliding windows, which the file would need
/// other tensors or keys for, are refused.
pub fn gguf_from_checkpoint(model: &HfModel, types: ExportTypes) -> Result<GgufWriter, String> {
    let c = &model.config;
    let what = model.dir.display();
    let weights = model
        .checkpoint
        .as_ref()
        .ok_or_else(|| format!("{what}: the model has no weights to export"))?;
    if matches!(types.float, GgmlType::Block(_)) {
        return Err(format!("{} is not a float type", types.float));
    }
    let arch = match c.model_type.as_str() {
        "llama" | "mistral" => "llama",
        a @ ("qwen2" | "qwen3") => a,
        other => return Err(format!("{what}: cannot export a '{other}' model to GGUF")),
    };
    if !matches!(c.rope_scaling, RopeScaling::Default) || c.sliding_window.is_some() {
        return Err(format!(
            "{what}: rope scaling and sliding windows are not exported to GGUF"
        ));
    }
    let mut w = GgufWriter::new();
    w.meta("general.architecture", MetaValue::Str(arch.into()));
    let u32_of = |x: i64| MetaValue::U32(x as u32);
    let key = |k: &str| format!("{arch}.{k}");
    w.meta(&key("context_length"), u32_of(c.max_position_embeddings));
    w.meta(&key("embedding_length"), u32_of(c.hidden_size));
    w.meta(&key("block_count"), u32_of(c.num_layers));
    w.meta(&key("feed_forward_length"), u32_of(c.intermediate_size));
    w.meta(&key("rope.dimension_count"), u32_of(c.head_dim));
    w.meta(&key("attention.head_count"), u32_of(c.num_heads));
    w.meta(&key("attention.head_count_kv"), u32_of(c.num_kv_heads));
    w.meta(&key("attention.key_length"), u32_of(c.head_dim));
    w.meta(&key("attention.value_length"), u32_of(c.head_dim));
    w.meta(&key("rope.freq_base"), MetaValue::F32(c.rope_theta as f32));
    let eps = MetaValue::F32(c.rms_norm_eps as f32);
    w.meta(&key("attention.layer_norm_rms_epsilon"), eps);
    w.meta(&key("vocab_size"), u32_of(c.vocab_size));
    let mut quantized = false;
    for (hf, shape) in c.expected_weights() {
        let name =
            gguf_name(&hf).ok_or_else(|| format!("{what}: no llama.cpp name for tensor '{hf}'"))?;
        let ty = match types.quantize {
            Some(f) if quantizable(&hf, &shape, f) => GgmlType::Block(f),
            _ if shape.len() <= 1 => GgmlType::F32,
            _ => types.float,
        };
        quantized |= matches!(ty, GgmlType::Block(_));
        let mut bytes = encode(weights, &hf, ty).map_err(|e| format!("{what}: {e}"))?;
        let heads = match () {
            _ if hf.contains("self_attn.q_proj.") => c.num_heads,
            _ if hf.contains("self_attn.k_proj.") => c.num_kv_heads,
            _ => 0,
        };
        if arch == "llama" && heads > 0 {
            bytes = permute_rows(&bytes, shape[0] as usize, heads as usize)
                .map_err(|e| format!("{what}: tensor '{hf}': {e}"))?;
        }
        let dims: Vec<u64> = shape.iter().rev().map(|&d| d as u64).collect();
        w.tensor(&name, ty, &dims, bytes);
    }
    if quantized {
        w.meta("general.quantization_version", MetaValue::U32(2));
    }
    Ok(w)
}

/// Tensor `name` of `weights` stored as `ty`: its bytes as they are when the types agree,
/// else its values converted (floats rounded to nearest even, blocks quantized as ggml's
/// reference code does).
fn encode(weights: &dyn WeightSource, name: &str, ty: GgmlType) -> Result<Vec<u8>, String> {
    let raw = weights.raw(name)?;
    if raw.elem == ty.elem() {
        return Ok(raw.bytes.into_owned());
    }
    let t = Tensor::from_raw(&raw, &TensorType::new(raw.shape.clone(), raw.elem))
        .map_err(|e| format!("tensor '{name}' {e}"))?;
    let values: Vec<f32> = match t.data {
        Data::F32(v) => v,
        Data::F64(v) => v.into_iter().map(|x| x as f32).collect(),
        Data::I64(_) => return Err(format!("tensor '{name}' is not a float tensor")),
    };
    Ok(match ty {
        GgmlType::F32 => values.iter().flat_map(|x| x.to_le_bytes()).collect(),
        GgmlType::F16 => values
            .iter()
            .flat_map(|&x| half::f16::from_f32(x).to_le_bytes())
            .collect(),
        GgmlType::BF16 => values
            .iter()
            .flat_map(|&x| half::bf16::from_f32(x).to_le_bytes())
            .collect(),
        GgmlType::Block(f) => {
            crate::quantize::quantize(f, &values).map_err(|e| format!("tensor '{name}': {e}"))?
        }
    })
}

/// llama.cpp's `LlamaModel.permute` on the rows of a q/k projection (or bias) of `heads`
/// heads: within each head, row `s * d/2 + j` (half `s` of the rope pair `j`) moves to
/// row `2j + s`. Rows move whole, so this commutes with quantizing them.
pub fn permute_rows(bytes: &[u8], rows: usize, heads: usize) -> Result<Vec<u8>, String> {
    if heads == 0
        || rows == 0
        || !rows.is_multiple_of(2 * heads)
        || !bytes.len().is_multiple_of(rows)
    {
        return Err(format!(
            "{rows} rows are not two halves of each of {heads} heads"
        ));
    }
    let row = bytes.len() / rows;
    let d = rows / heads;
    let mut out = vec![0u8; bytes.len()];
    for h in 0..heads {
        for s in 0..2 {
            for j in 0..d / 2 {
                let from = h * d + s * d / 2 + j;
                let to = h * d + 2 * j + s;
                out[to * row..(to + 1) * row].copy_from_slice(&bytes[from * row..(from + 1) * row]);
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gguf::GgufFile;

    fn temp(name: &str) -> std::path::PathBuf {
        std::env::temp_dir().join(format!("mkc-gguf-write-{}-{name}.gguf", std::process::id()))
    }

    #[test]
    fn layout_follows_the_spec() {
        let mut w = GgufWriter::new();
        w.meta("general.architecture", MetaValue::Str("llama".into()))
            .meta("a.b", MetaValue::U8(7))
            .tensor("x", GgmlType::F32, &[3], vec![0; 12])
            .tensor("y", GgmlType::F16, &[2, 2], vec![1; 8]);
        let bytes = w.to_bytes().unwrap();
        let l = w.layout().unwrap();
        assert_eq!(&bytes[..4], b"GGUF");
        assert_eq!(u32::from_le_bytes(bytes[4..8].try_into().unwrap()), 3);
        assert_eq!(u64::from_le_bytes(bytes[8..16].try_into().unwrap()), 2);
        assert_eq!(u64::from_le_bytes(bytes[16..24].try_into().unwrap()), 2);
        assert_eq!(l.metadata, 24);
        // "general.architecture": 8 + 20, type 4, "llama" 8 + 5; "a.b": 8 + 3, 4, 1.
        assert_eq!(l.tensor_infos, 24 + 45 + 16);
        assert_eq!(l.data % 32, 0);
        assert_eq!(l.offsets, vec![0, 32]);
        assert_eq!(l.len, l.data + 64);
        assert_eq!(bytes.len(), l.len);
        assert_eq!(&bytes[l.data + 32..l.data + 40], &[1; 8]);
    }

    #[test]
    fn the_reader_reads_what_it_writes() {
        let arr = MetaValue::Array(vec![
            MetaValue::Str("a".into()),
            MetaValue::Str("bc".into()),
        ]);
        let nested = MetaValue::Array(vec![
            MetaValue::Array(vec![MetaValue::I16(-2)]),
            MetaValue::Array(vec![MetaValue::F64(0.5), MetaValue::F64(1.5)]),
        ]);
        let scalars = [
            MetaValue::U8(1),
            MetaValue::I8(-1),
            MetaValue::U16(2),
            MetaValue::I16(-2),
            MetaValue::U32(3),
            MetaValue::I32(-3),
            MetaValue::U64(u64::MAX),
            MetaValue::I64(i64::MIN),
            MetaValue::F32(0.25),
            MetaValue::F64(-1e300),
            MetaValue::Bool(true),
            MetaValue::Str("héllo".into()),
            arr,
            nested,
            MetaValue::Array(vec![]),
        ];
        let mut w = GgufWriter::new();
        w.meta("general.alignment", MetaValue::U32(64));
        for (i, v) in scalars.iter().enumerate() {
            w.meta(&format!("test.v{i}"), v.clone());
        }
        let q = crate::quantize::quantize(BlockFormat::Q8_0, &[0.5; 64]).unwrap();
        w.tensor("a", GgmlType::BF16, &[5, 3], vec![9; 30]).tensor(
            "b",
            GgmlType::Block(BlockFormat::Q8_0),
            &[32, 2],
            q.clone(),
        );
        let path = temp("roundtrip");
        w.write(&path).unwrap();
        let f = GgufFile::open(&path).unwrap();
        std::fs::remove_file(&path).unwrap();
        assert_eq!(f.version, 3);
        for (i, v) in scalars.iter().enumerate() {
            let got = f.get(&format!("test.v{i}")).unwrap();
            // The empty array reads back as itself whatever its item type.
            assert_eq!(got, v, "test.v{i}");
        }
        let a = f.tensor("a").unwrap();
        assert_eq!(
            (a.ty, a.shape(), a.offset % 64),
            (GgmlType::BF16, vec![3, 5], 0)
        );
        assert_eq!(f.data(a), &[9; 30]);
        let b = f.tensor("b").unwrap();
        assert_eq!(b.offset - a.offset, 64);
        assert_eq!(f.data(b), &q[..]);
    }

    #[test]
    fn meta_and_tensor_replace_in_place() {
        let mut w = GgufWriter::new();
        w.meta("k", MetaValue::U8(1)).meta("l", MetaValue::U8(2));
        w.meta("k", MetaValue::Str("x".into()));
        assert_eq!(w.metadata[0], ("k".into(), MetaValue::Str("x".into())));
        assert_eq!(w.metadata.len(), 2);
        assert!(w.remove_meta("l") && !w.remove_meta("l"));
        w.tensor("t", GgmlType::F32, &[1], vec![0; 4]);
        w.tensor("t", GgmlType::F16, &[1], vec![0; 2]);
        assert_eq!(w.tensors.len(), 1);
        assert!(w.remove_tensor("t") && w.tensors.is_empty());
    }

    #[test]
    fn mixed_arrays_are_refused() {
        let mut w = GgufWriter::new();
        w.meta(
            "k",
            MetaValue::Array(vec![MetaValue::U8(1), MetaValue::Str("x".into())]),
        );
        let e = w.to_bytes().unwrap_err();
        assert!(
            e.contains("metadata 'k'") && e.contains("uint8") && e.contains("string"),
            "{e}"
        );
    }

    /// `LlamaModel.permute`: reshape(heads, 2, d/2, ...).swapaxes(1, 2), by hand for one
    /// head of 6 rows and two heads of 4; the reader's un-permutation puts them back.
    #[test]
    fn permute_interleaves_the_rope_halves() {
        let rows: Vec<u8> = (0..6).collect();
        assert_eq!(permute_rows(&rows, 6, 1).unwrap(), vec![0, 3, 1, 4, 2, 5]);
        let rows: Vec<u8> = (0..16).collect();
        // Two bytes a row, two heads of four rows.
        assert_eq!(
            permute_rows(&rows, 8, 2).unwrap(),
            vec![0, 1, 4, 5, 2, 3, 6, 7, 8, 9, 12, 13, 10, 11, 14, 15]
        );
        assert!(permute_rows(&rows, 8, 3).unwrap_err().contains("8 rows"));
    }

    #[test]
    fn names_invert() {
        for hf in [
            "model.embed_tokens.weight",
            "model.norm.weight",
            "lm_head.weight",
            "model.layers.0.self_attn.q_proj.weight",
            "model.layers.11.self_attn.k_proj.bias",
            "model.layers.3.self_attn.q_norm.weight",
            "model.layers.2.mlp.down_proj.weight",
            "model.layers.2.post_attention_layernorm.weight",
        ] {
            let g = gguf_name(hf).unwrap();
            assert_eq!(crate::gguf::hf_name(&g).as_deref(), Some(hf), "{g}");
        }
        assert_eq!(
            gguf_name("model.layers.1.self_attn.o_proj.weight").as_deref(),
            Some("blk.1.attn_output.weight")
        );
        assert_eq!(gguf_name("model.layers.1.rotary_emb.inv_freq"), None);
    }
}
