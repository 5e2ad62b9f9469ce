//! Types: scalars, static tensors, function types and opaque dialect types (`!task.event`).

use crate::quant::BlockFormat;
use std::fmt;

/// The element type of a tensor, or a scalar type.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, PartialOrd, Ord)]
pub enum ElemType {
    F64,
    F32,
    F16,
    BF16,
    I64,
    I32,
    I16,
    I8,
    I1,
    U64,
    U32,
    U16,
    U8,
    Index,
    /// Low-precision formats (ONNX/ml_dtypes): float8, float4, 4- and 2-bit integers.
    F8E4M3FN,
    F8E4M3FNUZ,
    F8E5M2,
    F8E5M2FNUZ,
    F8E8M0FNU,
    F4E2M1FN,
    I4,
    U4,
    I2,
    U2,
    /// ggml's block-quantized weights (`!mkc.q4_0`, `!mkc.q4_1`, `!mkc.q8_0`, `!mkc.q4_k`,
    /// `!mkc.q6_k`, dialect types inside builtin tensors): a tensor's
    /// rows are runs of blocks, so its innermost dimension is a multiple of the block's
    /// values; its elements are the dequantized reals.
    Block(BlockFormat),
}

impl ElemType {
    pub const ALL: [ElemType; 29] = [
        ElemType::F64,
        ElemType::F32,
        ElemType::F16,
        ElemType::BF16,
        ElemType::I64,
        ElemType::I32,
        ElemType::I16,
        ElemType::I8,
        ElemType::I1,
        ElemType::U64,
        ElemType::U32,
        ElemType::U16,
        ElemType::U8,
        ElemType::Index,
        ElemType::F8E4M3FN,
        ElemType::F8E4M3FNUZ,
        ElemType::F8E5M2,
        ElemType::F8E5M2FNUZ,
        ElemType::F8E8M0FNU,
        ElemType::F4E2M1FN,
        ElemType::I4,
        ElemType::U4,
        ElemType::I2,
        ElemType::U2,
        ElemType::Block(BlockFormat::Q4_0),
        ElemType::Block(BlockFormat::Q4_1),
        ElemType::Block(BlockFormat::Q8_0),
        ElemType::Block(BlockFormat::Q4K),
        ElemType::Block(BlockFormat::Q6K),
    ];

    /// The MLIR spelling (`bf16`, `i64`, `ui8`, `index`).
    pub fn name(self) -> &'static str {
        match self {
            ElemType::F64 => "f64",
            ElemType::F32 => "f32",
            ElemType::F16 => "f16",
            ElemType::BF16 => "bf16",
            ElemType::I64 => "i64",
            ElemType::I32 => "i32",
            ElemType::I16 => "i16",
            ElemType::I8 => "i8",
            ElemType::I1 => "i1",
            ElemType::U64 => "ui64",
            ElemType::U32 => "ui32",
            ElemType::U16 => "ui16",
            ElemType::U8 => "ui8",
            ElemType::Index => "index",
            ElemType::F8E4M3FN => "f8E4M3FN",
            ElemType::F8E4M3FNUZ => "f8E4M3FNUZ",
            ElemType::F8E5M2 => "f8E5M2",
            ElemType::F8E5M2FNUZ => "f8E5M2FNUZ",
            ElemType::F8E8M0FNU => "f8E8M0FNU",
            ElemType::F4E2M1FN => "f4E2M1FN",
            ElemType::I4 => "i4",
            ElemType::U4 => "ui4",
            ElemType::I2 => "i2",
            ElemType::U2 => "ui2",
            // A dialect type, so that printed IR stays MLIR that mlir-opt parses.
            ElemType::Block(f) => match f {
                BlockFormat::Q4_0 => "!mkc.q4_0",
                BlockFormat::Q4_1 => "!mkc.q4_1",
                BlockFormat::Q8_0 => "!mkc.q8_0",
                BlockFormat::Q4K => "!mkc.q4_k",
                BlockFormat::Q6K => "!mkc.q6_k",
            },
        }
    }

    pub fn from_name(s: &str) -> Option<ElemType> {
        ElemType::ALL.into_iter().find(|t| t.name() == s)
    }

    pub fn is_float(self) -> bool {
        matches!(
            self,
            ElemType::F64
                | ElemType::F32
                | ElemType::F16
                | ElemType::BF16
                | ElemType::F8E4M3FN
                | ElemType::F8E4M3FNUZ
                | ElemType::F8E5M2
                | ElemType::F8E5M2FNUZ
                | ElemType::F8E8M0FNU
                | ElemType::F4E2M1FN
                | ElemType::Block(_)
        )
    }

    /// float8/float4: stored as codes, computed through f32.
    pub fn is_minifloat(self) -> bool {
        self.is_float() && self.bits() <= 8 && !self.is_block()
    }

    /// A block-quantized weight format.
    pub fn is_block(self) -> bool {
        matches!(self, ElemType::Block(_))
    }

    /// Bytes a value takes on average (a block format's block bytes over its values), for
    /// cost estimates.
    pub fn value_bytes(self) -> f64 {
        match self {
            ElemType::Block(f) => f.block_bytes() as f64 / f.block_elems() as f64,
            e => e.bytes() as f64,
        }
    }

    /// Bytes `n` elements occupy, or `None` when that overflows or (for a block format)
    /// `n` is not whole blocks.
    pub fn storage_bytes(self, n: u64) -> Option<u64> {
        match self {
            ElemType::Block(f) => f.storage_bytes(n),
            e => n.checked_mul(e.bytes() as u64),
        }
    }

    pub fn is_int(self) -> bool {
        !self.is_float()
    }

    pub fn is_unsigned(self) -> bool {
        matches!(
            self,
            ElemType::U64
                | ElemType::U32
                | ElemType::U16
                | ElemType::U8
                | ElemType::U4
                | ElemType::U2
        )
    }

    /// Width in bits (index counts as 64).
    pub fn bits(self) -> u32 {
        match self {
            ElemType::F64 | ElemType::I64 | ElemType::U64 | ElemType::Index => 64,
            ElemType::F32 | ElemType::I32 | ElemType::U32 => 32,
            ElemType::F16 | ElemType::BF16 | ElemType::I16 | ElemType::U16 => 16,
            ElemType::I8 | ElemType::U8 => 8,
            ElemType::I1 => 1,
            ElemType::F8E4M3FN
            | ElemType::F8E4M3FNUZ
            | ElemType::F8E5M2
            | ElemType::F8E5M2FNUZ
            | ElemType::F8E8M0FNU => 8,
            ElemType::F4E2M1FN | ElemType::I4 | ElemType::U4 => 4,
            ElemType::I2 | ElemType::U2 => 2,
            // Bits per value, rounded up (q4_0: 4.5 -> 5); sizes come from storage_bytes.
            ElemType::Block(f) => (8 * f.block_bytes()).div_ceil(f.block_elems()) as u32,
        }
    }

    /// Bytes one element occupies in memory (i1 and the 4- and 2-bit types take a byte each
    /// here; files that pack them are unpacked on load). Block formats have no per-element
    /// size: use [`ElemType::storage_bytes`].
    pub fn bytes(self) -> usize {
        (self.bits() as usize).div_ceil(8)
    }
}

impl fmt::Display for ElemType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The largest dimension a tensor type may have (what the parser accepts): producers of IR
/// (importers) check against it so that what they print parses back.
pub const MAX_DIM: i64 = u32::MAX as i64;

/// A statically shaped tensor type: `tensor<2x3xbf16>`, `tensor<f32>` (rank 0).
#[derive(Clone, PartialEq, Eq, Hash, Debug)]
pub struct TensorType {
    pub shape: Vec<i64>,
    pub elem: ElemType,
}

impl TensorType {
    pub fn new(shape: impl Into<Vec<i64>>, elem: ElemType) -> Self {
        TensorType {
            shape: shape.into(),
            elem,
        }
    }

    pub fn rank(&self) -> usize {
        self.shape.len()
    }

    /// Number of elements, or `None` when it does not fit an `i64` (sizes are `i64`
    /// throughout the IR), or a dimension is negative.
    pub fn checked_num_elements(&self) -> Option<i64> {
        self.shape.iter().try_fold(
            1i64,
            |acc, &d| if d < 0 { None } else { acc.checked_mul(d) },
        )
    }

    /// Number of elements (1 for rank 0); saturates instead of overflowing, so absurd
    /// shapes from bad input fail size checks rather than wrap around.
    pub fn num_elements(&self) -> u64 {
        self.shape
            .iter()
            .fold(1u64, |acc, &d| acc.saturating_mul(d.max(0) as u64))
    }
}

impl fmt::Display for TensorType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("tensor<")?;
        for d in &self.shape {
            write!(f, "{d}x")?;
        }
        write!(f, "{}>", self.elem)
    }
}

/// Every type the IR knows.
#[derive(Clone, PartialEq, Eq, Hash, Debug)]
pub enum Type {
    Scalar(ElemType),
    Tensor(TensorType),
    /// `(inputs) -> results`; used by `func.func`'s `function_type`.
    Function(Vec<Type>, Vec<Type>),
    /// `!dialect.body`, e.g. `!task.event`; `body` is kept verbatim (it may hold `<...>`).
    Opaque {
        dialect: String,
        body: String,
    },
    /// MLIR's `none`.
    None,
}

impl Type {
    pub fn tensor(shape: impl Into<Vec<i64>>, elem: ElemType) -> Type {
        Type::Tensor(TensorType::new(shape, elem))
    }

    /// Bytes a tensor's elements occupy in memory (0 for other types; saturating, like
    /// [`TensorType::num_elements`]).
    pub fn byte_size(&self) -> u64 {
        self.as_tensor().map_or(0, |t| {
            t.elem.storage_bytes(t.num_elements()).unwrap_or(u64::MAX)
        })
    }

    pub fn as_tensor(&self) -> Option<&TensorType> {
        match self {
            Type::Tensor(t) => Some(t),
            _ => None,
        }
    }

    /// The element type of a tensor or the scalar itself.
    pub fn elem(&self) -> Option<ElemType> {
        match self {
            Type::Tensor(t) => Some(t.elem),
            Type::Scalar(e) => Some(*e),
            _ => None,
        }
    }
}

impl fmt::Display for Type {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Type::Scalar(e) => write!(f, "{e}"),
            Type::Tensor(t) => write!(f, "{t}"),
            Type::Function(ins, outs) => {
                write!(f, "(")?;
                write_list(f, ins)?;
                write!(f, ") -> ")?;
                // A single non-function result needs no parentheses.
                if outs.len() == 1 && !matches!(outs[0], Type::Function(..)) {
                    write!(f, "{}", outs[0])
                } else {
                    write!(f, "(")?;
                    write_list(f, outs)?;
                    write!(f, ")")
                }
            }
            Type::Opaque { dialect, body } => write!(f, "!{dialect}.{body}"),
            Type::None => write!(f, "none"),
        }
    }
}

/// Writes `a, b, c`.
pub fn write_list<T: fmt::Display>(f: &mut impl fmt::Write, items: &[T]) -> fmt::Result {
    for (i, t) in items.iter().enumerate() {
        if i > 0 {
            f.write_str(", ")?;
        }
        write!(f, "{t}")?;
    }
    Ok(())
}

/// The numpy broadcast of two shapes, or `None` when they are incompatible.
pub fn broadcast_shapes(a: &[i64], b: &[i64]) -> Option<Vec<i64>> {
    let rank = a.len().max(b.len());
    let mut out = vec![0; rank];
    for i in 0..rank {
        let da = if i < rank - a.len() {
            1
        } else {
            a[i - (rank - a.len())]
        };
        let db = if i < rank - b.len() {
            1
        } else {
            b[i - (rank - b.len())]
        };
        out[i] = match (da, db) {
            (x, y) if x == y => x,
            (1, y) => y,
            (x, 1) => x,
            _ => return None,
        };
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prints_mlir_spellings() {
        assert_eq!(
            Type::tensor([2, 3], ElemType::BF16).to_string(),
            "tensor<2x3xbf16>"
        );
        assert_eq!(Type::tensor([], ElemType::F32).to_string(), "tensor<f32>");
        let f = Type::Function(vec![Type::Scalar(ElemType::I64)], vec![Type::None]);
        assert_eq!(f.to_string(), "(i64) -> none");
        let g = Type::Function(vec![], vec![]);
        assert_eq!(g.to_string(), "() -> ()");
    }

    #[test]
    fn broadcasting_follows_numpy() {
        assert_eq!(broadcast_shapes(&[2, 1, 3], &[4, 1]), Some(vec![2, 4, 3]));
        assert_eq!(broadcast_shapes(&[], &[5]), Some(vec![5]));
        assert_eq!(broadcast_shapes(&[2, 3], &[3, 2]), None);
    }
}
