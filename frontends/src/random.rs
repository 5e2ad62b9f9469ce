//! Deterministic random weights for a config-only model: the same name always gives the same
//! values, so runs on different machines (CPU simulator, GPU) agree.

use mkc_ir::weights::{RawTensor, WeightSource};
use mkc_ir::ElemType;
use std::borrow::Cow;
use std::collections::HashMap;

pub struct RandomWeights {
    shapes: HashMap<String, (ElemType, Vec<i64>)>,
    seed: u64,
}

impl RandomWeights {
    pub fn new(weights: impl IntoIterator<Item = (String, ElemType, Vec<i64>)>, seed: u64) -> Self {
        RandomWeights {
            shapes: weights.into_iter().map(|(n, e, s)| (n, (e, s))).collect(),
            seed,
        }
    }
}

/// splitmix64: small, fast, good enough for test data.
fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E3779B97F4A7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58476D1CE4E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D049BB133111EB);
    z ^ (z >> 31)
}

fn name_hash(name: &str, seed: u64) -> u64 {
    name.bytes().fold(mix(seed), |h, b| mix(h ^ b as u64))
}

impl WeightSource for RandomWeights {
    fn raw(&self, name: &str) -> Result<RawTensor<'_>, String> {
        let (elem, shape) = self
            .shapes
            .get(name)
            .ok_or_else(|| format!("no random weight '{name}' is defined"))?;
        let n: usize = shape.iter().product::<i64>() as usize;
        // Norm scales near 1, everything else uniform in +-1/sqrt(fan_in): activations stay O(1).
        let is_norm = name.ends_with("norm.weight");
        let fan_in = *shape.last().unwrap_or(&1) as f64;
        let scale = if shape.len() == 1 {
            0.02
        } else {
            1.0 / fan_in.sqrt()
        };
        let base = name_hash(name, self.seed);
        if let ElemType::Block(f) = *elem {
            // Random values, then ggml's quantization of them.
            let vals = RandomWeights::new(
                [(name.to_string(), ElemType::F32, shape.clone())],
                self.seed,
            );
            let raw = vals.raw(name)?;
            let values: Vec<f32> = raw
                .bytes
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .collect();
            // Rows quantize independently: threads take runs of whole rows.
            let row = *shape.last().unwrap_or(&1) as usize;
            let threads = std::thread::available_parallelism().map_or(1, |t| t.get());
            let per = (values.len() / row.max(1)).div_ceil(threads).max(1) * row.max(1);
            let parts: Vec<Result<Vec<u8>, String>> = std::thread::scope(|s| {
                let jobs: Vec<_> = values
                    .chunks(per)
                    .map(|c| s.spawn(move || crate::quantize::quantize(f, c)))
                    .collect();
                jobs.into_iter()
                    .map(|j| j.join().unwrap_or_else(|_| Err("a thread panicked".into())))
                    .collect()
            });
            let mut bytes = Vec::new();
            for p in parts {
                bytes.extend(p.map_err(|e| format!("random weight '{name}': {e}"))?);
            }
            return Ok(RawTensor {
                elem: *elem,
                shape: shape.clone(),
                bytes: Cow::Owned(bytes),
            });
        }
        let eb = elem.bytes();
        if !matches!(
            elem,
            ElemType::BF16 | ElemType::F16 | ElemType::F32 | ElemType::F64
        ) {
            return Err(format!("cannot make random weights of type {elem}"));
        }
        // Element i depends on (name, i) only: threads fill disjoint ranges (an 8B model's
        // 16 GB take seconds instead of a minute on a many-core host).
        let mut bytes = vec![0u8; n * eb];
        let fill = |first: usize, out: &mut [u8]| {
            for (j, o) in out.chunks_exact_mut(eb).enumerate() {
                let i = first + j;
                let u = (mix(base ^ i as u64) >> 11) as f64 / (1u64 << 53) as f64 * 2.0 - 1.0;
                let v = if is_norm { 1.0 + 0.1 * u } else { scale * u };
                match elem {
                    ElemType::BF16 => o.copy_from_slice(&half::bf16::from_f64(v).to_le_bytes()),
                    ElemType::F16 => o.copy_from_slice(&half::f16::from_f64(v).to_le_bytes()),
                    ElemType::F32 => o.copy_from_slice(&(v as f32).to_le_bytes()),
                    _ => o.copy_from_slice(&v.to_le_bytes()),
                }
            }
        };
        let threads = std::thread::available_parallelism().map_or(1, |t| t.get());
        let per = n.div_ceil(threads).max(1 << 16);
        std::thread::scope(|s| {
            for (k, out) in bytes.chunks_mut(per * eb).enumerate() {
                let fill = &fill;
                s.spawn(move || fill(k * per, out));
            }
        });
        Ok(RawTensor {
            elem: *elem,
            shape: shape.clone(),
            bytes: Cow::Owned(bytes),
        })
    }
}
