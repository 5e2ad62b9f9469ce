//! The GGUF container (llama.cpp's model file), versions 2 and 3: header, typed metadata,
//! tensor infos and the aligned data section, memory-mapped. Every count, length, shape and
//! offset read from the file is bounded by the file itself before it sizes anything, and
//! every rejection names the file and the byte offset or the tensor. What the metadata
//! means for a model is `gguf::model`'s business, not this file's.

use memmap2::Mmap;
use mkc_ir::quant::BlockFormat;
use mkc_ir::ElemType;
use std::collections::BTreeMap;
use std::fmt;
use std::fs::File;
use std::path::{Path, PathBuf};

/// The 4 bytes every GGUF file starts with.
pub const MAGIC: &[u8; 4] = b"GGUF";
/// Data alignment when `general.alignment` is absent.
const DEFAULT_ALIGNMENT: u64 = 32;
/// ggml tensors have at most 4 dimensions (`GGML_MAX_DIMS`).
const MAX_DIMS: u32 = 4;
/// Nesting of metadata arrays; GGUF writers emit one level.
const MAX_ARRAY_DEPTH: u32 = 4;
/// The largest element count of one tensor mkc accepts (2^40, far above any real weight).
const MAX_ELEMENTS: u64 = 1 << 40;

/// One metadata value, typed as the file states.
#[derive(Clone, Debug, PartialEq)]
pub enum MetaValue {
    U8(u8),
    I8(i8),
    U16(u16),
    I16(i16),
    U32(u32),
    I32(i32),
    U64(u64),
    I64(i64),
    F32(f32),
    F64(f64),
    Bool(bool),
    Str(String),
    Array(Vec<MetaValue>),
}

impl MetaValue {
    /// GGUF's name for the value's type (for errors).
    pub fn type_name(&self) -> &'static str {
        match self {
            MetaValue::U8(_) => "uint8",
            MetaValue::I8(_) => "int8",
            MetaValue::U16(_) => "uint16",
            MetaValue::I16(_) => "int16",
            MetaValue::U32(_) => "uint32",
            MetaValue::I32(_) => "int32",
            MetaValue::U64(_) => "uint64",
            MetaValue::I64(_) => "int64",
            MetaValue::F32(_) => "float32",
            MetaValue::F64(_) => "float64",
            MetaValue::Bool(_) => "bool",
            MetaValue::Str(_) => "string",
            MetaValue::Array(_) => "array",
        }
    }

    /// Any integer type, as i128 (so every u64 and i64 fits).
    pub fn as_int(&self) -> Option<i128> {
        Some(match *self {
            MetaValue::U8(x) => x.into(),
            MetaValue::I8(x) => x.into(),
            MetaValue::U16(x) => x.into(),
            MetaValue::I16(x) => x.into(),
            MetaValue::U32(x) => x.into(),
            MetaValue::I32(x) => x.into(),
            MetaValue::U64(x) => x.into(),
            MetaValue::I64(x) => x.into(),
            _ => return None,
        })
    }

    /// A float, or an integer taken as a float.
    pub fn as_f64(&self) -> Option<f64> {
        match *self {
            MetaValue::F32(x) => Some(x.into()),
            MetaValue::F64(x) => Some(x),
            _ => self.as_int().map(|i| i as f64),
        }
    }
}

impl fmt::Display for MetaValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MetaValue::Str(s) => write!(f, "{s:?}"),
            MetaValue::Bool(b) => write!(f, "{b}"),
            MetaValue::Array(a) => write!(f, "[{} values]", a.len()),
            v => match (v.as_int(), v.as_f64()) {
                (Some(i), _) => write!(f, "{i}"),
                (None, Some(x)) => write!(f, "{x}"),
                _ => unreachable!("every scalar is an integer or a float"),
            },
        }
    }
}

/// A tensor's storage type, as ggml numbers them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GgmlType {
    F32,
    F16,
    BF16,
    Block(BlockFormat),
}

/// ggml's names for its type ids (`enum ggml_type`), for the ones mkc does not read too.
fn ggml_type_name(id: u32) -> Option<&'static str> {
    const NAMES: [&str; 40] = [
        "F32", "F16", "Q4_0", "Q4_1", "", "", "Q5_0", "Q5_1", "Q8_0", "Q8_1", "Q2_K", "Q3_K",
        "Q4_K", "Q5_K", "Q6_K", "Q8_K", "IQ2_XXS", "IQ2_XS", "IQ3_XXS", "IQ1_S", "IQ4_NL", "IQ3_S",
        "IQ2_S", "IQ4_XS", "I8", "I16", "I32", "I64", "F64", "IQ1_M", "BF16", "", "", "", "TQ1_0",
        "TQ2_0", "", "", "", "MXFP4",
    ];
    NAMES.get(id as usize).copied().filter(|n| !n.is_empty())
}

impl GgmlType {
    pub fn from_id(id: u32) -> Result<GgmlType, String> {
        match id {
            0 => Ok(GgmlType::F32),
            1 => Ok(GgmlType::F16),
            30 => Ok(GgmlType::BF16),
            _ => match BlockFormat::from_ggml_type(id) {
                Some(f) => Ok(GgmlType::Block(f)),
                None => Err(match ggml_type_name(id) {
                    Some(n) => format!(
                        "type {n} (ggml type {id}), which mkc does not read (it reads F32, F16, \
                         BF16, Q4_0, Q4_1, Q8_0, Q4_K and Q6_K)"
                    ),
                    None => format!("unknown ggml type {id}"),
                }),
            },
        }
    }

    /// The element type mkc's IR gives such a tensor.
    pub fn elem(self) -> ElemType {
        match self {
            GgmlType::F32 => ElemType::F32,
            GgmlType::F16 => ElemType::F16,
            GgmlType::BF16 => ElemType::BF16,
            GgmlType::Block(f) => ElemType::Block(f),
        }
    }

    /// Values a row's length must be a multiple of.
    pub fn block_elems(self) -> u64 {
        match self {
            GgmlType::Block(f) => f.block_elems() as u64,
            _ => 1,
        }
    }

    /// Bytes of `n` values, or `None` when `n` is not whole blocks.
    pub fn storage_bytes(self, n: u64) -> Option<u64> {
        match self {
            GgmlType::F32 => n.checked_mul(4),
            GgmlType::F16 | GgmlType::BF16 => n.checked_mul(2),
            GgmlType::Block(f) => f.storage_bytes(n),
        }
    }
}

impl fmt::Display for GgmlType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            GgmlType::F32 => f.write_str("F32"),
            GgmlType::F16 => f.write_str("F16"),
            GgmlType::BF16 => f.write_str("BF16"),
            GgmlType::Block(b) => f.write_str(&b.name().to_uppercase()),
        }
    }
}

/// One tensor's description.
#[derive(Clone, Debug, PartialEq)]
pub struct TensorInfo {
    /// ggml's order: `dims[0]` is the innermost (contiguous) dimension.
    pub dims: Vec<u64>,
    pub ty: GgmlType,
    /// Where its bytes start, from the start of the file.
    pub offset: u64,
    pub bytes: u64,
}

impl TensorInfo {
    /// The row-major shape (outermost first), as the tensor level writes shapes.
    pub fn shape(&self) -> Vec<i64> {
        self.dims.iter().rev().map(|&d| d as i64).collect()
    }
}

/// A GGUF file, memory-mapped, with its metadata and tensor index read and checked.
pub struct GgufFile {
    pub path: PathBuf,
    pub version: u32,
    pub metadata: BTreeMap<String, MetaValue>,
    /// In file order (names are unique).
    pub tensors: Vec<(String, TensorInfo)>,
    index: BTreeMap<String, usize>,
    map: Mmap,
}

/// A cursor over the file's bytes that names the file and offset in every error.
struct Reader<'a> {
    path: &'a Path,
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn err(&self, what: impl fmt::Display) -> String {
        format!("{}: at byte {}: {what}", self.path.display(), self.at)
    }

    fn left(&self) -> usize {
        self.bytes.len() - self.at
    }

    fn take(&mut self, n: u64, what: &str) -> Result<&'a [u8], String> {
        if n > self.left() as u64 {
            return Err(self.err(format!(
                "the file ends inside {what} ({n} bytes needed, {} left): truncated?",
                self.left()
            )));
        }
        let s = &self.bytes[self.at..self.at + n as usize];
        self.at += n as usize;
        Ok(s)
    }

    fn array<const N: usize>(&mut self, what: &str) -> Result<[u8; N], String> {
        Ok(self.take(N as u64, what)?.try_into().expect("took N bytes"))
    }

    fn u32(&mut self, what: &str) -> Result<u32, String> {
        self.array(what).map(u32::from_le_bytes)
    }

    fn u64(&mut self, what: &str) -> Result<u64, String> {
        self.array(what).map(u64::from_le_bytes)
    }

    fn string(&mut self, what: &str) -> Result<String, String> {
        let n = self.u64(what)?;
        let start = self.at;
        let b = self.take(n, what)?;
        String::from_utf8(b.to_vec()).map_err(|_| {
            format!(
                "{}: at byte {start}: {what} is not valid UTF-8",
                self.path.display()
            )
        })
    }

    /// A count of items that each take at least `min_bytes`: more than the rest of the
    /// file could hold is an error, before anything is allocated for them.
    fn count(&mut self, what: &str, min_bytes: u64) -> Result<u64, String> {
        let n = self.u64(what)?;
        if n.saturating_mul(min_bytes) > self.left() as u64 {
            return Err(self.err(format!(
                "{what} is {n}, more than the {} bytes left can hold: corrupt or truncated",
                self.left()
            )));
        }
        Ok(n)
    }

    fn value(&mut self, ty: u32, key: &str, depth: u32) -> Result<MetaValue, String> {
        let what = &format!("the value of '{key}'");
        Ok(match ty {
            0 => MetaValue::U8(self.array::<1>(what)?[0]),
            1 => MetaValue::I8(self.array::<1>(what)?[0] as i8),
            2 => MetaValue::U16(u16::from_le_bytes(self.array(what)?)),
            3 => MetaValue::I16(i16::from_le_bytes(self.array(what)?)),
            4 => MetaValue::U32(self.u32(what)?),
            5 => MetaValue::I32(i32::from_le_bytes(self.array(what)?)),
            6 => MetaValue::F32(f32::from_le_bytes(self.array(what)?)),
            7 => match self.array::<1>(what)?[0] {
                0 => MetaValue::Bool(false),
                1 => MetaValue::Bool(true),
                b => return Err(self.err(format!("'{key}' is a bool of value {b}"))),
            },
            8 => MetaValue::Str(self.string(what)?),
            9 if depth >= MAX_ARRAY_DEPTH => {
                return Err(self.err(format!("'{key}' nests arrays too deeply")))
            }
            9 => {
                let elem = self.u32(what)?;
                // Each item takes at least its type's encoded size, so the rest of the file
                // bounds the count (and the allocation) by what it can really hold.
                let n = self.count(&format!("the length of '{key}'"), encoded_min(elem))?;
                let mut items = Vec::with_capacity(n as usize);
                for _ in 0..n {
                    items.push(self.value(elem, key, depth + 1)?);
                }
                MetaValue::Array(items)
            }
            10 => MetaValue::U64(self.u64(what)?),
            11 => MetaValue::I64(i64::from_le_bytes(self.array(what)?)),
            12 => MetaValue::F64(f64::from_le_bytes(self.array(what)?)),
            t => return Err(self.err(format!("'{key}' has unknown metadata type {t}"))),
        })
    }

    fn tensor_info(&mut self) -> Result<(String, Vec<u64>, u32, u64), String> {
        let name = self.string("a tensor name")?;
        let n_dims = self.u32("a tensor's dimension count")?;
        if n_dims == 0 || n_dims > MAX_DIMS {
            return Err(self.err(format!(
                "tensor '{name}' has {n_dims} dimensions (ggml allows 1 to {MAX_DIMS})"
            )));
        }
        let mut dims = Vec::with_capacity(n_dims as usize);
        for _ in 0..n_dims {
            dims.push(self.u64("a tensor dimension")?);
        }
        let ty = self.u32("a tensor type")?;
        let offset = self.u64("a tensor offset")?;
        Ok((name, dims, ty, offset))
    }
}

/// The fewest bytes a metadata value of type `ty` takes (a string its length, an array its
/// item type and count; an unknown type is reported when its first item is read).
fn encoded_min(ty: u32) -> u64 {
    match ty {
        2 | 3 => 2,
        4..=6 => 4,
        8 | 10..=12 => 8,
        9 => 12,
        _ => 1,
    }
}

impl GgufFile {
    /// Opens, maps and checks `path`.
    pub fn open(path: &Path) -> Result<GgufFile, String> {
        let file = File::open(path).map_err(|e| format!("cannot open {}: {e}", path.display()))?;
        // SAFETY: read-only map; a file changed under us while mapped is outside what any
        // loader can defend against (as for safetensors).
        let map = unsafe { Mmap::map(&file) }
            .map_err(|e| format!("cannot map {}: {e}", path.display()))?;
        let (version, metadata, tensors) = parse(path, &map)?;
        let index = tensors
            .iter()
            .enumerate()
            .map(|(i, (n, _))| (n.clone(), i))
            .collect();
        Ok(GgufFile {
            path: path.to_path_buf(),
            version,
            metadata,
            tensors,
            index,
            map,
        })
    }

    pub fn tensor(&self, name: &str) -> Option<&TensorInfo> {
        self.index.get(name).map(|&i| &self.tensors[i].1)
    }

    /// A tensor's bytes, as stored.
    pub fn data(&self, info: &TensorInfo) -> &[u8] {
        // In range: checked when the file was opened.
        &self.map[info.offset as usize..(info.offset + info.bytes) as usize]
    }

    pub fn get(&self, key: &str) -> Option<&MetaValue> {
        self.metadata.get(key)
    }

    fn wrong_type(&self, key: &str, v: &MetaValue, want: &str) -> String {
        format!(
            "{}: metadata '{key}' is a {} ({v}), expected {want}",
            self.path.display(),
            v.type_name()
        )
    }

    /// An integer metadata value in `lo..=hi`, if present.
    pub fn int(&self, key: &str, lo: i128, hi: i128) -> Result<Option<i128>, String> {
        let Some(v) = self.get(key) else {
            return Ok(None);
        };
        let i = v
            .as_int()
            .ok_or_else(|| self.wrong_type(key, v, "an integer"))?;
        if i < lo || i > hi {
            return Err(format!(
                "{}: metadata '{key}' = {i} is outside {lo}..={hi}",
                self.path.display()
            ));
        }
        Ok(Some(i))
    }

    /// A float (or integer) metadata value, if present.
    pub fn float(&self, key: &str) -> Result<Option<f64>, String> {
        match self.get(key) {
            None => Ok(None),
            Some(v) => v
                .as_f64()
                .filter(|x| x.is_finite())
                .map(Some)
                .ok_or_else(|| self.wrong_type(key, v, "a finite number")),
        }
    }

    pub fn string(&self, key: &str) -> Result<Option<&str>, String> {
        match self.get(key) {
            None => Ok(None),
            Some(MetaValue::Str(s)) => Ok(Some(s)),
            Some(v) => Err(self.wrong_type(key, v, "a string")),
        }
    }

    pub fn bool(&self, key: &str) -> Result<Option<bool>, String> {
        match self.get(key) {
            None => Ok(None),
            Some(MetaValue::Bool(b)) => Ok(Some(*b)),
            Some(v) => Err(self.wrong_type(key, v, "a bool")),
        }
    }

    /// An array metadata value whose every item `item` accepts.
    pub fn array<T>(
        &self,
        key: &str,
        want: &str,
        item: impl Fn(&MetaValue) -> Option<T>,
    ) -> Result<Option<Vec<T>>, String> {
        match self.get(key) {
            None => Ok(None),
            Some(MetaValue::Array(items)) => items
                .iter()
                .enumerate()
                .map(|(i, v)| {
                    item(v).ok_or_else(|| {
                        format!(
                            "{}: metadata '{key}'[{i}] is a {} ({v}), expected {want}",
                            self.path.display(),
                            v.type_name()
                        )
                    })
                })
                .collect::<Result<Vec<T>, String>>()
                .map(Some),
            Some(v) => Err(self.wrong_type(key, v, &format!("an array of {want}"))),
        }
    }
}

type Parsed = (u32, BTreeMap<String, MetaValue>, Vec<(String, TensorInfo)>);

fn parse(path: &Path, bytes: &[u8]) -> Result<Parsed, String> {
    let mut r = Reader { path, bytes, at: 0 };
    let magic = r.array::<4>("the magic number")?;
    if &magic != MAGIC {
        return Err(format!(
            "{}: not a GGUF file (it starts with {magic:02x?}, GGUF files with \"GGUF\")",
            path.display()
        ));
    }
    let version = r.u32("the version")?;
    if !(2..=3).contains(&version) {
        return Err(r.err(format!(
            "GGUF version {version}; mkc reads versions 2 and 3 (a byte-swapped, big-endian \
             file reads as a huge version)"
        )));
    }
    // A tensor info takes at least 8 (name length) + 4 + 8 + 4 + 8 bytes; a key/value pair
    // at least 8 (key length) + 4 + 1.
    let n_tensors = r.u64("the tensor count")?;
    let n_kv = r.count("the metadata count", 13)?;
    let mut metadata = BTreeMap::new();
    for _ in 0..n_kv {
        let key = r.string("a metadata key")?;
        let ty = r.u32("a metadata type")?;
        let v = r.value(ty, &key, 0)?;
        if metadata.insert(key.clone(), v).is_some() {
            return Err(r.err(format!("metadata key '{key}' appears twice")));
        }
    }
    if n_tensors.saturating_mul(32) > r.left() as u64 {
        return Err(r.err(format!(
            "the tensor count is {n_tensors}, more than the {} bytes left can describe",
            r.left()
        )));
    }
    let alignment = match metadata.get("general.alignment") {
        None => DEFAULT_ALIGNMENT,
        Some(v) => match v.as_int() {
            Some(a) if a > 0 && a <= 1 << 20 && (a as u64).is_power_of_two() => a as u64,
            _ => {
                return Err(format!(
                    "{}: metadata 'general.alignment' is {v}; it must be a power of two up to 2^20",
                    path.display()
                ))
            }
        },
    };
    let mut raw = Vec::with_capacity(n_tensors as usize);
    for _ in 0..n_tensors {
        raw.push(r.tensor_info()?);
    }
    let data_start = (r.at as u64).div_ceil(alignment) * alignment;
    let mut tensors = Vec::with_capacity(raw.len());
    let mut seen = std::collections::HashSet::new();
    for (name, dims, ty, offset) in raw {
        let info = tensor_info(dims, ty, offset, data_start, alignment, bytes.len())
            .map_err(|e| format!("{}: tensor '{name}': {e}", path.display()))?;
        if !seen.insert(name.clone()) {
            return Err(format!("{}: tensor '{name}' appears twice", path.display()));
        }
        tensors.push((name, info));
    }
    Ok((version, metadata, tensors))
}

/// Checks one tensor's description against the file: a readable type, a plausible shape
/// of whole blocks, an aligned offset and bytes inside the file.
fn tensor_info(
    dims: Vec<u64>,
    ty: u32,
    offset: u64,
    data_start: u64,
    alignment: u64,
    file_len: usize,
) -> Result<TensorInfo, String> {
    let ty = GgmlType::from_id(ty)?;
    if dims.contains(&0) {
        return Err(format!(
            "dimensions {dims:?} (innermost first) include a 0: an empty tensor"
        ));
    }
    let mut n: u64 = 1;
    for &d in &dims {
        n = n
            .checked_mul(d)
            .filter(|&n| n <= MAX_ELEMENTS)
            .ok_or_else(|| {
                format!("dimensions {dims:?} (innermost first) hold more than 2^40 values")
            })?;
    }
    if !dims[0].is_multiple_of(ty.block_elems()) {
        return Err(format!(
            "type {ty} stores rows in blocks of {} values, but its rows have {}",
            ty.block_elems(),
            dims[0]
        ));
    }
    let bytes = ty.storage_bytes(n).ok_or("its size overflows")?;
    if !offset.is_multiple_of(alignment) {
        return Err(format!(
            "its data offset {offset} is not a multiple of the alignment {alignment}"
        ));
    }
    let start = data_start
        .checked_add(offset)
        .filter(|&s| s.checked_add(bytes).is_some_and(|e| e <= file_len as u64))
        .ok_or_else(|| {
            format!(
                "its {bytes} bytes at data offset {offset} (file offset {}) run past the end of \
                 the file ({file_len} bytes): truncated or corrupt",
                data_start.saturating_add(offset)
            )
        })?;
    Ok(TensorInfo {
        dims,
        ty,
        offset: start,
        bytes,
    })
}
