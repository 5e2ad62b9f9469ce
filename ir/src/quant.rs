//! TEMPORARY local scaffold (replaced by the quant-formats branch).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, PartialOrd, Ord)]
pub enum BlockFormat {
    Q4_0,
    Q4_1,
    Q8_0,
    Q4K,
    Q6K,
}
impl BlockFormat {
    pub const ALL: [BlockFormat; 5] = [
        BlockFormat::Q4_0,
        BlockFormat::Q4_1,
        BlockFormat::Q8_0,
        BlockFormat::Q4K,
        BlockFormat::Q6K,
    ];
    pub fn name(self) -> &'static str {
        match self {
            BlockFormat::Q4_0 => "q4_0",
            BlockFormat::Q4_1 => "q4_1",
            BlockFormat::Q8_0 => "q8_0",
            BlockFormat::Q4K => "q4_k",
            BlockFormat::Q6K => "q6_k",
        }
    }
    pub fn from_name(s: &str) -> Option<BlockFormat> {
        Self::ALL.into_iter().find(|f| f.name() == s)
    }
    pub fn ggml_type(self) -> u32 {
        match self {
            BlockFormat::Q4_0 => 2,
            BlockFormat::Q4_1 => 3,
            BlockFormat::Q8_0 => 8,
            BlockFormat::Q4K => 12,
            BlockFormat::Q6K => 14,
        }
    }
    pub fn from_ggml_type(t: u32) -> Option<BlockFormat> {
        Self::ALL.into_iter().find(|f| f.ggml_type() == t)
    }
    pub fn block_elems(self) -> usize {
        match self {
            BlockFormat::Q4K | BlockFormat::Q6K => 256,
            _ => 32,
        }
    }
    pub fn block_bytes(self) -> usize {
        match self {
            BlockFormat::Q4_0 => 18,
            BlockFormat::Q4_1 => 20,
            BlockFormat::Q8_0 => 34,
            BlockFormat::Q4K => 144,
            BlockFormat::Q6K => 210,
        }
    }
    pub fn storage_bytes(self, n: u64) -> Option<u64> {
        let b = self.block_elems() as u64;
        if !n.is_multiple_of(b) {
            return None;
        }
        (n / b).checked_mul(self.block_bytes() as u64)
    }
    pub fn dequantize(self, bytes: &[u8], out: &mut [f32]) -> Result<(), String> {
        let bb = self.block_bytes();
        let be = self.block_elems();
        if !out.len().is_multiple_of(be) || bytes.len() != out.len() / be * bb {
            return Err("length".into());
        }
        for (blk, o) in bytes.chunks(bb).zip(out.chunks_mut(be)) {
            self.dequantize_block(blk, o);
        }
        Ok(())
    }
    pub fn dequantize_block(self, block: &[u8], out: &mut [f32]) {
        let d = half::f16::from_le_bytes([block[0], block[1]]).to_f32();
        match self {
            BlockFormat::Q8_0 => {
                for i in 0..32 {
                    out[i] = d * (block[2 + i] as i8) as f32;
                }
            }
            BlockFormat::Q4_1 => {
                let m = half::f16::from_le_bytes([block[2], block[3]]).to_f32();
                for j in 0..16 {
                    let q = block[4 + j];
                    out[j] = (q & 15) as f32 * d + m;
                    out[j + 16] = (q >> 4) as f32 * d + m;
                }
            }
            _ => out.fill(f32::NAN),
        }
    }
}
