//! Host tensors: what the reference interpreter and the CPU engines compute on. Floats narrower than f64 are held as f32 (bf16 and f16
//! values rounded to their type), f64 as f64, integers and i1 as i64.

use crate::attr::{round_to, wrap_int, DenseAttr, DenseValues, F64};
use crate::dialect::tg::elementwise::Scalar;
use crate::types::{ElemType, TensorType};
use crate::weights::RawTensor;

#[derive(Clone, Debug, PartialEq)]
pub enum Data {
    F32(Vec<f32>),
    F64(Vec<f64>),
    I64(Vec<i64>),
}

#[derive(Clone, Debug, PartialEq)]
pub struct Tensor {
    pub ty: TensorType,
    pub data: Data,
}

impl Tensor {
    /// A tensor of `ty` with every element produced by `f(flat index)`, converted to `ty`.
    pub fn from_fn(ty: TensorType, mut f: impl FnMut(usize) -> Scalar) -> Tensor {
        let n = ty.num_elements() as usize;
        let data = match ty.elem {
            ElemType::F64 => Data::F64((0..n).map(|i| f(i).f()).collect()),
            e if e.is_float() => Data::F32((0..n).map(|i| round_to(f(i).f(), e) as f32).collect()),
            e => Data::I64((0..n).map(|i| f(i).convert(e).i()).collect()),
        };
        Tensor { ty, data }
    }

    /// A tensor of `ty` that holds poison everywhere: NaN for floats, 0 for integers (what
    /// an element nobody computed holds in the simulator).
    pub fn poison(ty: TensorType) -> Tensor {
        let n = ty.num_elements() as usize;
        let data = match ty.elem {
            ElemType::F64 => Data::F64(vec![f64::NAN; n]),
            e if e.is_float() => Data::F32(vec![f32::NAN; n]),
            _ => Data::I64(vec![0; n]),
        };
        Tensor { ty, data }
    }

    /// Sets element `i` to `x`, converted to the element type as [`Tensor::from_fn`] does.
    pub fn set(&mut self, i: usize, x: Scalar) {
        let e = self.ty.elem;
        match &mut self.data {
            Data::F64(v) => v[i] = x.f(),
            Data::F32(v) => v[i] = round_to(x.f(), e) as f32,
            Data::I64(v) => v[i] = x.convert(e).i(),
        }
    }

    pub fn len(&self) -> usize {
        match &self.data {
            Data::F32(v) => v.len(),
            Data::F64(v) => v.len(),
            Data::I64(v) => v.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn get(&self, i: usize) -> Scalar {
        match &self.data {
            Data::F32(v) => Scalar::F(v[i] as f64),
            Data::F64(v) => Scalar::F(v[i]),
            Data::I64(v) => Scalar::I(v[i]),
        }
    }

    pub fn f(&self, i: usize) -> f64 {
        self.get(i).f()
    }

    /// All elements as f64 (for comparisons and reports).
    pub fn to_f64(&self) -> Vec<f64> {
        (0..self.len()).map(|i| self.f(i)).collect()
    }

    /// Same elements, another shape.
    pub fn reshaped(&self, shape: Vec<i64>) -> Tensor {
        Tensor {
            ty: TensorType::new(shape, self.ty.elem),
            data: self.data.clone(),
        }
    }

    /// The tensor as a dense attribute (for materialising folded constants).
    pub fn to_dense(&self) -> DenseAttr {
        let values = match &self.data {
            Data::F32(v) => DenseValues::Float(v.iter().map(|&x| F64(x as f64)).collect()),
            Data::F64(v) => DenseValues::Float(v.iter().map(|&x| F64(x)).collect()),
            Data::I64(v) => DenseValues::Int(v.clone()),
        };
        DenseAttr {
            ty: self.ty.clone(),
            splat: false,
            values,
        }
    }

    pub fn from_dense(d: &DenseAttr) -> Tensor {
        let n = d.ty.num_elements() as usize;
        let at = |i: usize| if d.splat { 0 } else { i };
        Tensor::from_fn(d.ty.clone(), |i| match &d.values {
            DenseValues::Int(v) => Scalar::I(v[at(i)]),
            DenseValues::Float(v) => Scalar::F(v[at(i)].0),
        })
        .check_len(n)
    }

    fn check_len(self, n: usize) -> Tensor {
        debug_assert_eq!(self.len(), n);
        self
    }

    /// Decodes a checkpoint tensor (little-endian) into `ty`'s element type.
    pub fn from_raw(raw: &RawTensor, ty: &TensorType) -> Result<Tensor, String> {
        if raw.elem != ty.elem {
            return Err(format!(
                "is {} in the checkpoint, but the IR expects {}",
                raw.elem, ty.elem
            ));
        }
        if raw.shape != ty.shape {
            return Err(format!(
                "has shape {:?} in the checkpoint, but the IR expects {}",
                raw.shape, ty
            ));
        }
        if let ElemType::Block(f) = raw.elem {
            // Dequantized exactly as ggml does; rows are whole blocks (the verifier checks).
            let mut out = vec![0f32; ty.num_elements() as usize];
            f.dequantize(&raw.bytes, &mut out)?;
            return Ok(Tensor {
                ty: ty.clone(),
                data: Data::F32(out),
            });
        }
        let w = raw.elem.bytes();
        let n = ty.num_elements() as usize;
        if raw.bytes.len() != n * w {
            return Err(format!(
                "holds {} bytes, but {n} elements of {} need {}",
                raw.bytes.len(),
                raw.elem,
                n * w
            ));
        }
        let b = &raw.bytes;
        let word = |i: usize| -> u64 {
            let mut v = 0u64;
            for k in 0..w {
                v |= (b[i * w + k] as u64) << (8 * k);
            }
            v
        };
        let elem = raw.elem;
        let decode = |i: usize| -> Scalar {
            let bits = word(i);
            match elem {
                ElemType::F64 => Scalar::F(f64::from_bits(bits)),
                ElemType::F32 => Scalar::F(f32::from_bits(bits as u32) as f64),
                ElemType::F16 => Scalar::F(half::f16::from_bits(bits as u16).to_f64()),
                ElemType::BF16 => Scalar::F(half::bf16::from_bits(bits as u16).to_f64()),
                ElemType::I1 => Scalar::I((bits != 0) as i64),
                e if e.is_minifloat() => {
                    Scalar::F(crate::minifloat::decode(bits as u32, e).unwrap_or(f64::NAN))
                }
                e if e.is_unsigned() || w == 8 => Scalar::I(wrap_int(bits as i64, e)),
                _ => {
                    let shift = 64 - 8 * w as u32;
                    Scalar::I(((bits << shift) as i64) >> shift)
                }
            }
        };
        Ok(Tensor::from_fn(ty.clone(), decode))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::borrow::Cow;

    #[test]
    fn decodes_raw_little_endian() {
        let raw = RawTensor {
            elem: ElemType::BF16,
            shape: vec![2],
            bytes: Cow::Owned(vec![0x80, 0x3f, 0x00, 0xc0]), // 1.0, -2.0
        };
        let t = Tensor::from_raw(&raw, &TensorType::new([2], ElemType::BF16)).unwrap();
        assert_eq!(t.to_f64(), vec![1.0, -2.0]);
        let wrong = Tensor::from_raw(&raw, &TensorType::new([2], ElemType::F32)).unwrap_err();
        assert!(wrong.contains("is bf16 in the checkpoint"), "{wrong}");
        let bad = Tensor::from_raw(&raw, &TensorType::new([3], ElemType::BF16)).unwrap_err();
        assert!(bad.contains("shape"), "{bad}");
        let i8s = RawTensor {
            elem: ElemType::I8,
            shape: vec![2],
            bytes: Cow::Owned(vec![0xff, 0x05]),
        };
        let t = Tensor::from_raw(&i8s, &TensorType::new([2], ElemType::I8)).unwrap();
        assert_eq!(t.data, Data::I64(vec![-1, 5]));
    }
}
