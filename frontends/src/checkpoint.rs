//! Memory-mapped safetensors checkpoints: one file, or shards listed by
//! `model.safetensors.index.json`. Tensors are read in place; nothing is copied until an
//! executor asks for a tensor.

use memmap2::Mmap;
use mkc_ir::weights::{RawTensor, WeightSource};
use mkc_ir::ElemType;
use safetensors::{Dtype, SafeTensors};
use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fs::File;
use std::path::{Path, PathBuf};

/// A tensor's description in a checkpoint.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TensorInfo {
    pub elem: ElemType,
    pub shape: Vec<i64>,
    /// Which mapped file holds it.
    file: usize,
}

/// The safetensors files of a checkpoint, memory-mapped, and an index of their tensors.
pub struct Checkpoint {
    maps: Vec<(PathBuf, Mmap)>,
    tensors: BTreeMap<String, TensorInfo>,
}

fn elem_of(d: Dtype) -> Option<ElemType> {
    Some(match d {
        Dtype::BOOL => ElemType::I1,
        Dtype::U8 => ElemType::U8,
        Dtype::I8 => ElemType::I8,
        Dtype::I16 => ElemType::I16,
        Dtype::U16 => ElemType::U16,
        Dtype::F16 => ElemType::F16,
        Dtype::BF16 => ElemType::BF16,
        Dtype::I32 => ElemType::I32,
        Dtype::U32 => ElemType::U32,
        Dtype::F32 => ElemType::F32,
        Dtype::F64 => ElemType::F64,
        Dtype::I64 => ElemType::I64,
        Dtype::U64 => ElemType::U64,
        _ => return None,
    })
}

impl Checkpoint {
    /// Opens `model.safetensors`, or the shards named by `model.safetensors.index.json`,
    /// in `dir`; or a single `.safetensors` file.
    pub fn open(path: &Path) -> Result<Checkpoint, String> {
        if !path.exists() {
            return Err(format!("{}: no such file or folder", path.display()));
        }
        let files: Vec<PathBuf> = if path.is_file() {
            vec![path.to_path_buf()]
        } else if path.join("model.safetensors").is_file() {
            vec![path.join("model.safetensors")]
        } else if path.join("model.safetensors.index.json").is_file() {
            let index_path = path.join("model.safetensors.index.json");
            let text = std::fs::read_to_string(&index_path)
                .map_err(|e| format!("cannot read {}: {e}", index_path.display()))?;
            let index: serde_json::Value = serde_json::from_str(&text)
                .map_err(|e| format!("{}: not valid JSON: {e}", index_path.display()))?;
            let map = index
                .get("weight_map")
                .and_then(|m| m.as_object())
                .ok_or_else(|| format!("{}: no \"weight_map\" object", index_path.display()))?;
            let mut shards: Vec<String> = map
                .values()
                .map(|v| {
                    v.as_str()
                        .map(str::to_string)
                        .ok_or("weight_map values must be file names")
                })
                .collect::<Result<_, _>>()?;
            shards.sort();
            shards.dedup();
            shards.into_iter().map(|s| path.join(s)).collect()
        } else {
            return Err(format!(
                "{}: no model.safetensors or model.safetensors.index.json",
                path.display()
            ));
        };
        let mut maps = Vec::new();
        let mut tensors = BTreeMap::new();
        for (i, f) in files.into_iter().enumerate() {
            let file = File::open(&f).map_err(|e| format!("cannot open {}: {e}", f.display()))?;
            // SAFETY: the map is read-only; a checkpoint changing under us while mapped is
            // outside what any loader can defend against (as in the safetensors docs).
            let map = unsafe { Mmap::map(&file) }
                .map_err(|e| format!("cannot map {}: {e}", f.display()))?;
            let st = SafeTensors::deserialize(&map)
                .map_err(|e| format!("{}: not a valid safetensors file ({e})", f.display()))?;
            for (name, view) in st.tensors() {
                let elem = elem_of(view.dtype()).ok_or_else(|| {
                    format!(
                        "{}: tensor '{name}' has unsupported dtype {:?}",
                        f.display(),
                        view.dtype()
                    )
                })?;
                let shape = view.shape().iter().map(|&d| d as i64).collect();
                if tensors
                    .insert(
                        name.clone(),
                        TensorInfo {
                            elem,
                            shape,
                            file: i,
                        },
                    )
                    .is_some()
                {
                    return Err(format!("tensor '{name}' appears in more than one shard"));
                }
            }
            maps.push((f, map));
        }
        Ok(Checkpoint { maps, tensors })
    }

    /// Every tensor: name -> (element type, shape).
    pub fn tensors(&self) -> impl Iterator<Item = (&str, &TensorInfo)> {
        self.tensors.iter().map(|(k, v)| (k.as_str(), v))
    }

    pub fn info(&self, name: &str) -> Option<&TensorInfo> {
        self.tensors.get(name)
    }
}

impl WeightSource for Checkpoint {
    fn raw(&self, name: &str) -> Result<RawTensor<'_>, String> {
        let info = self
            .tensors
            .get(name)
            .ok_or_else(|| format!("the checkpoint has no tensor '{name}'"))?;
        let (path, map) = &self.maps[info.file];
        let st = SafeTensors::deserialize(map).map_err(|e| format!("{}: {e}", path.display()))?;
        let view = st
            .tensor(name)
            .map_err(|e| format!("{}: {e}", path.display()))?;
        Ok(RawTensor {
            elem: info.elem,
            shape: info.shape.clone(),
            bytes: Cow::Borrowed(view.data()),
        })
    }
}
