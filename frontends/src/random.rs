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
        let mut bytes = Vec::with_capacity(n * elem.bytes());
        for i in 0..n {
            let u = (mix(base ^ i as u64) >> 11) as f64 / (1u64 << 53) as f64 * 2.0 - 1.0;
            let v = if is_norm { 1.0 + 0.1 * u } else { scale * u };
            match elem {
                ElemType::BF16 => bytes.extend(half::bf16::from_f64(v).to_le_bytes()),
                ElemType::F16 => bytes.extend(half::f16::from_f64(v).to_le_bytes()),
                ElemType::F32 => bytes.extend((v as f32).to_le_bytes()),
                ElemType::F64 => bytes.extend(v.to_le_bytes()),
                other => return Err(format!("cannot make random weights of type {other}")),
            }
        }
        Ok(RawTensor {
            elem: *elem,
            shape: shape.clone(),
            bytes: Cow::Owned(bytes),
        })
    }
}
