//! ggml's block-quantized weight formats (the ones llama.cpp's GGUF files use most: Q4_0,
//! Q4_1, Q8_0, Q4_K, Q6_K): their block layouts, dequantization and reference quantization,
//! bit for bit what ggml's `ggml-quants.c` computes (`dequantize_row_*`,
//! `quantize_row_*_ref`). It owns only the byte-level codec; which tensors carry these
//! formats is the type system's business.
//!
//! Arithmetic follows ggml's C expression by expression, in f32, with f16 scales decoded
//! exactly and encoded round-to-nearest-even, and no fused multiply-adds, so results match
//! ggml's portable C build (and the `gguf` Python package) to the bit.

use half::f16;

/// Values in a K-quant super-block (ggml's `QK_K`).
const QK_K: usize = 256;
/// ggml's threshold below which a group counts as all zero.
const GROUP_MAX_EPS: f32 = 1e-15;

/// ggml's block-quantized formats: each row of a weight is a run of blocks, each block
/// `block_elems()` values in `block_bytes()` bytes.
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

    /// The lower-case name ggml and llama.cpp use ("q4_0", ..., "q6_k").
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

    /// ggml's `enum ggml_type` id, as written in GGUF tensor infos.
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
            BlockFormat::Q4_0 | BlockFormat::Q4_1 | BlockFormat::Q8_0 => 32,
            BlockFormat::Q4K | BlockFormat::Q6K => QK_K,
        }
    }

    pub fn block_bytes(self) -> usize {
        match self {
            // f16 d, 16 bytes of nibbles
            BlockFormat::Q4_0 => 18,
            // f16 d, f16 m, 16 bytes of nibbles
            BlockFormat::Q4_1 => 20,
            // f16 d, 32 i8
            BlockFormat::Q8_0 => 34,
            // f16 d, f16 dmin, 12 bytes of 6-bit scales and mins, 128 bytes of nibbles
            BlockFormat::Q4K => 144,
            // 128 bytes ql, 64 bytes qh, 16 i8 scales, f16 d
            BlockFormat::Q6K => 210,
        }
    }

    /// Bytes of `n` values (n a multiple of block_elems), or None if it is not / overflows.
    pub fn storage_bytes(self, n: u64) -> Option<u64> {
        let elems = self.block_elems() as u64;
        if !n.is_multiple_of(elems) {
            return None;
        }
        (n / elems).checked_mul(self.block_bytes() as u64)
    }

    /// How mkc lays out a tensor of this format in device memory: every block's quantized
    /// values (its payload) in one plane, row after row, then every block's scales (its
    /// meta) in a second plane. Each payload is a multiple of 16 bytes, so a row of
    /// payloads is too and lanes read it with 16-byte loads, which ggml's interleaved
    /// 18-, 20-, 34- or 210-byte blocks do not allow. (payload bytes, meta bytes) per block.
    pub fn planes(self) -> (usize, usize) {
        match self {
            BlockFormat::Q4_0 => (16, 2),
            BlockFormat::Q4_1 => (16, 4),
            BlockFormat::Q8_0 => (32, 2),
            BlockFormat::Q4K => (128, 16),
            BlockFormat::Q6K => (192, 18),
        }
    }

    /// A ggml block's (payload, meta) parts ([`BlockFormat::planes`]): ggml puts the scales
    /// first (d, then m or dmin and the packed sub-block scales), except Q6_K, whose scales
    /// and d follow its ql and qh.
    pub fn split_block(self, block: &[u8]) -> (&[u8], &[u8]) {
        let (p, m) = self.planes();
        debug_assert_eq!(p + m, self.block_bytes());
        match self {
            BlockFormat::Q6K => block.split_at(p.min(block.len())),
            _ => {
                let (meta, payload) = block.split_at(m.min(block.len()));
                (payload, meta)
            }
        }
    }

    /// A run of ggml blocks (a tensor's rows, one after another) in mkc's two-plane device
    /// layout ([`BlockFormat::planes`]); `None` when it is not whole blocks.
    pub fn to_planes(self, bytes: &[u8]) -> Option<Vec<u8>> {
        if !bytes.len().is_multiple_of(self.block_bytes()) {
            return None;
        }
        let n = bytes.len() / self.block_bytes();
        let (p, _) = self.planes();
        let mut out = vec![0u8; bytes.len()];
        let (payloads, metas) = out.split_at_mut(n * p);
        for (i, block) in bytes.chunks_exact(self.block_bytes()).enumerate() {
            let (pl, me) = self.split_block(block);
            payloads[i * p..(i + 1) * p].copy_from_slice(pl);
            metas[i * me.len()..(i + 1) * me.len()].copy_from_slice(me);
        }
        Some(out)
    }

    /// [`BlockFormat::to_planes`] of a matrix of `rows` rows laid out K-block-major
    /// ([`crate::dialect::task::Layout::block`]): block (n, kb) goes `kb * rows + n`-th.
    pub fn to_planes_k_major(self, bytes: &[u8], rows: usize) -> Option<Vec<u8>> {
        let bb = self.block_bytes();
        if rows == 0 || !bytes.len().is_multiple_of(bb * rows) {
            return None;
        }
        let per_row = bytes.len() / bb / rows;
        let mut blocks = Vec::with_capacity(bytes.len());
        for kb in 0..per_row {
            for n in 0..rows {
                let at = (n * per_row + kb) * bb;
                blocks.extend_from_slice(&bytes[at..at + bb]);
            }
        }
        self.to_planes(&blocks)
    }

    /// One block into block_elems() f32 values, bit for bit what ggml computes.
    ///
    /// Only the first `block_bytes()` bytes and `block_elems()` values are used. When
    /// `block` or `out` is shorter than that, `out` is filled with NaN instead (there is no
    /// error channel here; use [`BlockFormat::dequantize`] for checked lengths).
    pub fn dequantize_block(self, block: &[u8], out: &mut [f32]) {
        let ok = match self {
            BlockFormat::Q4_0 => with_arrays(block, out, dequantize_q4_0),
            BlockFormat::Q4_1 => with_arrays(block, out, dequantize_q4_1),
            BlockFormat::Q8_0 => with_arrays(block, out, dequantize_q8_0),
            BlockFormat::Q4K => with_arrays(block, out, dequantize_q4_k),
            BlockFormat::Q6K => with_arrays(block, out, dequantize_q6_k),
        };
        if !ok {
            out.fill(f32::NAN);
        }
    }

    /// A run of whole blocks; Err (naming the lengths) when `bytes` is not exactly the blocks
    /// of `out.len()` values.
    pub fn dequantize(self, bytes: &[u8], out: &mut [f32]) -> Result<(), String> {
        let (elems, size) = (self.block_elems(), self.block_bytes());
        if !out.len().is_multiple_of(elems) {
            return Err(format!(
                "{}: {} values are not a whole number of {}-value blocks",
                self.name(),
                out.len(),
                elems
            ));
        }
        let want = out.len() / elems * size;
        if bytes.len() != want {
            return Err(format!(
                "{}: {} values take {} bytes ({} blocks of {}), got {} bytes",
                self.name(),
                out.len(),
                want,
                out.len() / elems,
                size,
                bytes.len()
            ));
        }
        for (block, values) in bytes.chunks_exact(size).zip(out.chunks_exact_mut(elems)) {
            self.dequantize_block(block, values);
        }
        Ok(())
    }

    /// ggml's reference quantization (quantize_row_*_ref) of `x` (len a multiple of
    /// block_elems), appended to `out`. Every format is supported; on a length error `out`
    /// is left unchanged.
    pub fn quantize(self, x: &[f32], out: &mut Vec<u8>) -> Result<(), String> {
        let elems = self.block_elems();
        if !x.len().is_multiple_of(elems) {
            return Err(format!(
                "{}: {} values are not a whole number of {}-value blocks",
                self.name(),
                x.len(),
                elems
            ));
        }
        out.reserve(x.len() / elems * self.block_bytes());
        for values in x.chunks_exact(elems) {
            match self {
                BlockFormat::Q4_0 => out.extend_from_slice(&quantize_q4_0(arr(values))),
                BlockFormat::Q4_1 => out.extend_from_slice(&quantize_q4_1(arr(values))),
                BlockFormat::Q8_0 => out.extend_from_slice(&quantize_q8_0(arr(values))),
                BlockFormat::Q4K => out.extend_from_slice(&quantize_q4_k(arr(values))),
                BlockFormat::Q6K => out.extend_from_slice(&quantize_q6_k(arr(values))),
            }
        }
        Ok(())
    }
}

/// Runs `f` on the fixed-size prefixes of `block` and `out`; false if either is too short.
fn with_arrays<const B: usize, const E: usize>(
    block: &[u8],
    out: &mut [f32],
    f: fn(&[u8; B], &mut [f32; E]),
) -> bool {
    match (block.get(..B), out.get_mut(..E)) {
        (Some(b), Some(o)) => match (b.try_into(), o.try_into()) {
            (Ok(b), Ok(o)) => {
                f(b, o);
                true
            }
            _ => false,
        },
        _ => false,
    }
}

/// The fixed-size view of a chunk from `chunks_exact(N)`, which always has length N.
fn arr<const N: usize>(values: &[f32]) -> &[f32; N] {
    values.try_into().unwrap_or(&[0.0; N])
}

/// ggml's GGML_FP16_TO_FP32 of a little-endian f16 at `b[i..i + 2]`.
fn f16_at(b: &[u8], i: usize) -> f32 {
    f16::from_bits(u16::from_le_bytes([b[i], b[i + 1]])).to_f32()
}

/// ggml's GGML_FP32_TO_FP16 (round to nearest even), little-endian.
fn f16_bytes(v: f32) -> [u8; 2] {
    f16::from_f32(v).to_bits().to_le_bytes()
}

fn dequantize_q4_0(b: &[u8; 18], y: &mut [f32; 32]) {
    let d = f16_at(b, 0);
    for j in 0..16 {
        let q = b[2 + j];
        y[j] = ((q & 0x0F) as i32 - 8) as f32 * d;
        y[j + 16] = ((q >> 4) as i32 - 8) as f32 * d;
    }
}

fn dequantize_q4_1(b: &[u8; 20], y: &mut [f32; 32]) {
    let (d, m) = (f16_at(b, 0), f16_at(b, 2));
    for j in 0..16 {
        let q = b[4 + j];
        y[j] = (q & 0x0F) as f32 * d + m;
        y[j + 16] = (q >> 4) as f32 * d + m;
    }
}

fn dequantize_q8_0(b: &[u8; 34], y: &mut [f32; 32]) {
    let d = f16_at(b, 0);
    for j in 0..32 {
        y[j] = b[2 + j] as i8 as f32 * d;
    }
}

/// ggml's get_scale_min_k4: the 6-bit scale and min of sub-block `j` (0..8) of a Q4_K
/// block, packed 4 + 4 + 4 bytes (low 6 bits of bytes 0..8, then nibbles of 8..12 with the
/// top 2 bits of bytes 0..8 above them).
fn get_scale_min_k4(j: usize, q: &[u8; 12]) -> (u8, u8) {
    if j < 4 {
        (q[j] & 63, q[j + 4] & 63)
    } else {
        (
            (q[j + 4] & 0x0F) | ((q[j - 4] >> 6) << 4),
            (q[j + 4] >> 4) | ((q[j] >> 6) << 4),
        )
    }
}

fn q4_k_scales(b: &[u8; 144]) -> &[u8; 12] {
    b[4..16].try_into().unwrap_or(&[0; 12])
}

fn dequantize_q4_k(b: &[u8; 144], y: &mut [f32; 256]) {
    let (d, min) = (f16_at(b, 0), f16_at(b, 2));
    let scales = q4_k_scales(b);
    // Each 32 bytes of nibbles hold two 32-value sub-blocks: low nibbles, then high.
    for chunk in 0..4 {
        let q = &b[16 + 32 * chunk..16 + 32 * (chunk + 1)];
        let (sc1, m1) = get_scale_min_k4(2 * chunk, scales);
        let (sc2, m2) = get_scale_min_k4(2 * chunk + 1, scales);
        let (d1, m1) = (d * sc1 as f32, min * m1 as f32);
        let (d2, m2) = (d * sc2 as f32, min * m2 as f32);
        let y = &mut y[64 * chunk..64 * (chunk + 1)];
        for l in 0..32 {
            y[l] = d1 * (q[l] & 0x0F) as f32 - m1;
            y[l + 32] = d2 * (q[l] >> 4) as f32 - m2;
        }
    }
}

fn dequantize_q6_k(b: &[u8; 210], y: &mut [f32; 256]) {
    let d = f16_at(b, 208);
    // Each half of the block: 64 bytes of ql, 32 of qh, 8 scales for 128 values.
    for n in 0..2 {
        let ql = &b[64 * n..64 * (n + 1)];
        let qh = &b[128 + 32 * n..128 + 32 * (n + 1)];
        let sc = &b[192 + 8 * n..192 + 8 * (n + 1)];
        let y = &mut y[128 * n..128 * (n + 1)];
        for l in 0..32 {
            let is = l / 16;
            let h = qh[l];
            let q1 = ((ql[l] & 0x0F) | ((h & 3) << 4)) as i32 - 32;
            let q2 = ((ql[l + 32] & 0x0F) | (((h >> 2) & 3) << 4)) as i32 - 32;
            let q3 = ((ql[l] >> 4) | (((h >> 4) & 3) << 4)) as i32 - 32;
            let q4 = ((ql[l + 32] >> 4) | (((h >> 6) & 3) << 4)) as i32 - 32;
            // (d * scale) * q, in ggml's order.
            y[l] = d * sc[is] as i8 as f32 * q1 as f32;
            y[l + 32] = d * sc[is + 2] as i8 as f32 * q2 as f32;
            y[l + 64] = d * sc[is + 4] as i8 as f32 * q3 as f32;
            y[l + 96] = d * sc[is + 6] as i8 as f32 * q4 as f32;
        }
    }
}

/// ggml's C `MAX(a, b)`: `a > b ? a : b` (so a NaN `b` wins, as in C).
fn c_max(a: f32, b: f32) -> f32 {
    if a > b {
        a
    } else {
        b
    }
}

/// The packed nibbles of 32 quants, ggml's order: byte j holds q[j] low and q[j + 16] high.
fn pack_nibbles(q: &[u8; 32]) -> [u8; 16] {
    let mut out = [0u8; 16];
    for j in 0..16 {
        out[j] = q[j] | (q[j + 16] << 4);
    }
    out
}

fn quantize_q8_0(x: &[f32; 32]) -> [u8; 34] {
    let amax = x.iter().fold(0.0f32, |a, v| c_max(a, v.abs()));
    let d = amax / 127.0;
    let id = if d != 0.0 { 1.0 / d } else { 0.0 };
    let mut out = [0u8; 34];
    out[..2].copy_from_slice(&f16_bytes(d));
    for j in 0..32 {
        // roundf: half away from zero, like f32::round.
        out[2 + j] = (x[j] * id).round() as i8 as u8;
    }
    out
}

fn quantize_q4_0(x: &[f32; 32]) -> [u8; 18] {
    // The value of largest magnitude (the first, on ties) maps to -8.
    let (mut amax, mut max) = (0.0f32, 0.0f32);
    for &v in x {
        if amax < v.abs() {
            amax = v.abs();
            max = v;
        }
    }
    let d = max / -8.0;
    let id = if d != 0.0 { 1.0 / d } else { 0.0 };
    let mut q = [0u8; 32];
    for j in 0..32 {
        // C: MIN(15, (int8_t)(x0 + 8.5f)), truncating.
        q[j] = ((x[j] * id + 8.5) as i8).min(15) as u8;
    }
    let mut out = [0u8; 18];
    out[..2].copy_from_slice(&f16_bytes(d));
    out[2..].copy_from_slice(&pack_nibbles(&q));
    out
}

fn quantize_q4_1(x: &[f32; 32]) -> [u8; 20] {
    let (mut min, mut max) = (f32::MAX, -f32::MAX);
    for &v in x {
        if v < min {
            min = v;
        }
        if v > max {
            max = v;
        }
    }
    let d = (max - min) / 15.0;
    let id = if d != 0.0 { 1.0 / d } else { 0.0 };
    let mut q = [0u8; 32];
    for j in 0..32 {
        q[j] = (((x[j] - min) * id + 0.5) as i8).min(15) as u8;
    }
    let mut out = [0u8; 20];
    out[..2].copy_from_slice(&f16_bytes(d));
    out[2..4].copy_from_slice(&f16_bytes(min));
    out[4..].copy_from_slice(&pack_nibbles(&q));
    out
}

/// ggml's nearest_int: round to nearest (ties to even) through the float's mantissa; exact
/// for |f| <= 4194303, and (like ggml) some deterministic value beyond.
fn nearest_int(f: f32) -> i32 {
    let val = f + 12582912.0;
    (val.to_bits() as i32 & 0x007f_ffff) - 0x0040_0000
}

/// ggml's make_qkx2_quants for n = 32, nmax = 15 and use_mad = false (how
/// quantize_row_q4_K_ref calls it): a scale and min for `x` found by a weighted
/// least-squares search over `nstep + 1` candidate scales. Returns (scale, -min) and leaves
/// the quants in `l`.
fn make_qkx2_quants(
    x: &[f32; 32],
    weights: &[f32; 32],
    l: &mut [u8; 32],
    rmin: f32,
    rdelta: f32,
    nstep: i32,
) -> (f32, f32) {
    const NMAX: i32 = 15;
    let (mut min, mut max) = (x[0], x[0]);
    let mut sum_w = weights[0];
    let mut sum_x = sum_w * x[0];
    for i in 1..32 {
        if x[i] < min {
            min = x[i];
        }
        if x[i] > max {
            max = x[i];
        }
        sum_w += weights[i];
        sum_x += weights[i] * x[i];
    }
    if min > 0.0 {
        min = 0.0;
    }
    if max == min {
        l.fill(0);
        return (0.0, -min);
    }
    let mut iscale = NMAX as f32 / (max - min);
    let mut scale = 1.0 / iscale;
    let mut best_error = 0.0f32;
    for i in 0..32 {
        l[i] = nearest_int(iscale * (x[i] - min)).clamp(0, NMAX) as u8;
        let diff = scale * l[i] as f32 + min - x[i];
        best_error += weights[i] * (diff * diff);
    }
    let mut laux = [0u8; 32];
    for is in 0..=nstep {
        iscale = (rmin + rdelta * is as f32 + NMAX as f32) / (max - min);
        let (mut sum_l, mut sum_l2, mut sum_xl) = (0.0f32, 0.0f32, 0.0f32);
        for i in 0..32 {
            let q = nearest_int(iscale * (x[i] - min)).clamp(0, NMAX);
            laux[i] = q as u8;
            let (w, q) = (weights[i], q as f32);
            sum_l += w * q;
            sum_l2 += w * q * q;
            sum_xl += w * q * x[i];
        }
        let det = sum_w * sum_l2 - sum_l * sum_l;
        if det > 0.0 {
            let mut this_scale = (sum_w * sum_xl - sum_x * sum_l) / det;
            let mut this_min = (sum_l2 * sum_x - sum_l * sum_xl) / det;
            if this_min > 0.0 {
                this_min = 0.0;
                this_scale = sum_xl / sum_l2;
            }
            let mut cur_error = 0.0f32;
            for i in 0..32 {
                let diff = this_scale * laux[i] as f32 + this_min - x[i];
                cur_error += weights[i] * (diff * diff);
            }
            if cur_error < best_error {
                *l = laux;
                best_error = cur_error;
                scale = this_scale;
                min = this_min;
            }
        }
    }
    (scale, -min)
}

/// The 6-bit scales and mins of a Q4_K block packed as get_scale_min_k4 reads them.
fn pack_q4_k_scales(ls: &[u8; 8], lm: &[u8; 8]) -> [u8; 12] {
    let mut s = [0u8; 12];
    for j in 0..8 {
        if j < 4 {
            s[j] = ls[j];
            s[j + 4] = lm[j];
        } else {
            s[j + 4] = (ls[j] & 0x0F) | ((lm[j] & 0x0F) << 4);
            s[j - 4] |= (ls[j] >> 4) << 6;
            s[j] |= (lm[j] >> 4) << 6;
        }
    }
    s
}

fn quantize_q4_k(x: &[f32; 256]) -> [u8; 144] {
    let mut big_l = [[0u8; 32]; 8];
    let (mut scales, mut mins) = ([0.0f32; 8], [0.0f32; 8]);
    // Scales and mins are non-negative (the min is subtracted), so the maxima start at 0.
    let (mut max_scale, mut max_min) = (0.0f32, 0.0f32);
    for j in 0..8 {
        let xs: &[f32; 32] = arr(&x[32 * j..32 * (j + 1)]);
        let mut sum_x2 = 0.0f32;
        for &v in xs {
            sum_x2 += v * v;
        }
        let av_x = (sum_x2 / 32.0).sqrt();
        let weights = xs.map(|v| av_x + v.abs());
        (scales[j], mins[j]) = make_qkx2_quants(xs, &weights, &mut big_l[j], -1.0, 0.1, 20);
        if scales[j] > max_scale {
            max_scale = scales[j];
        }
        if mins[j] > max_min {
            max_min = mins[j];
        }
    }
    let inv_scale = if max_scale > 0.0 {
        63.0 / max_scale
    } else {
        0.0
    };
    let inv_min = if max_min > 0.0 { 63.0 / max_min } else { 0.0 };
    // C stores nearest_int's int into a uint8_t (truncating) before MIN(63, .).
    let ls = scales.map(|s| (nearest_int(inv_scale * s) as u8).min(63));
    let lm = mins.map(|m| (nearest_int(inv_min * m) as u8).min(63));
    let packed = pack_q4_k_scales(&ls, &lm);
    let (d, dmin) = (f16_bytes(max_scale / 63.0), f16_bytes(max_min / 63.0));
    let (df, dminf) = (f16_at(&d, 0), f16_at(&dmin, 0));
    // Requantize against the scales as stored (f16 and 6-bit), as ggml does.
    for j in 0..8 {
        let (sc, m) = get_scale_min_k4(j, &packed);
        let dj = df * sc as f32;
        if dj == 0.0 {
            continue;
        }
        let dm = dminf * m as f32;
        for ii in 0..32 {
            big_l[j][ii] = nearest_int((x[32 * j + ii] + dm) / dj).clamp(0, 15) as u8;
        }
    }
    let mut out = [0u8; 144];
    out[..2].copy_from_slice(&d);
    out[2..4].copy_from_slice(&dmin);
    out[4..16].copy_from_slice(&packed);
    // Sub-blocks 2c and 2c + 1 share 32 bytes: low nibbles, then high.
    for c in 0..4 {
        for l in 0..32 {
            out[16 + 32 * c + l] = big_l[2 * c][l] | (big_l[2 * c + 1][l] << 4);
        }
    }
    out
}

/// ggml's make_qx_quants for n = 16, nmax = 32, rmse_type = 1 and no importance weights
/// (how quantize_row_q6_K_ref calls it): a symmetric scale for `x` refined over 18 nearby
/// candidates, weighting by x². Returns the scale and leaves quants + 32 in `l`.
fn make_qx_quants(x: &[f32; 16], l: &mut [u8; 16]) -> f32 {
    const NMAX: i32 = 32;
    let (mut max, mut amax) = (0.0f32, 0.0f32);
    for &v in x {
        if v.abs() > amax {
            amax = v.abs();
            max = v;
        }
    }
    if amax < GROUP_MAX_EPS {
        l.fill(0);
        return 0.0;
    }
    let quant = |iscale: f32, v: f32| nearest_int(iscale * v).clamp(-NMAX, NMAX - 1);
    // The weighted sums of x·q and q² for the quants at `iscale`.
    let sums = |iscale: f32| {
        let (mut sumlx, mut suml2) = (0.0f32, 0.0f32);
        for &v in x {
            let (q, w) = (quant(iscale, v) as f32, v * v);
            sumlx += w * v * q;
            suml2 += w * q * q;
        }
        (sumlx, suml2)
    };
    let iscale = -NMAX as f32 / max;
    for (q, &v) in l.iter_mut().zip(x) {
        *q = (quant(iscale, v) + NMAX) as u8;
    }
    let (sumlx, suml2) = sums(iscale);
    let mut scale = if suml2 != 0.0 { sumlx / suml2 } else { 0.0 };
    let mut best = scale * sumlx;
    for is in (-9..=9).filter(|&is| is != 0) {
        let iscale = -(NMAX as f32 + 0.1 * is as f32) / max;
        let (sumlx, suml2) = sums(iscale);
        if suml2 > 0.0 && sumlx * sumlx > best * suml2 {
            for (q, &v) in l.iter_mut().zip(x) {
                *q = (quant(iscale, v) + NMAX) as u8;
            }
            scale = sumlx / suml2;
            best = scale * sumlx;
        }
    }
    scale
}

fn quantize_q6_k(x: &[f32; 256]) -> [u8; 210] {
    let mut big_l = [[0u8; 16]; 16];
    let mut scales = [0.0f32; 16];
    let (mut max_scale, mut max_abs_scale) = (0.0f32, 0.0f32);
    for ib in 0..16 {
        scales[ib] = make_qx_quants(arr(&x[16 * ib..16 * (ib + 1)]), &mut big_l[ib]);
        if scales[ib].abs() > max_abs_scale {
            max_abs_scale = scales[ib].abs();
            max_scale = scales[ib];
        }
    }
    let mut out = [0u8; 210];
    if max_abs_scale < GROUP_MAX_EPS {
        return out;
    }
    let iscale = -128.0 / max_scale;
    out[208..].copy_from_slice(&f16_bytes(1.0 / iscale));
    let d = f16_at(&out, 208);
    for ib in 0..16 {
        // C stores MIN(127, nearest_int(.)) into an int8_t (truncating).
        let sc = nearest_int(iscale * scales[ib]).min(127) as i8;
        out[192 + ib] = sc as u8;
        let dj = d * sc as f32;
        if dj == 0.0 {
            continue;
        }
        for ii in 0..16 {
            big_l[ib][ii] = (nearest_int(x[16 * ib + ii] / dj).clamp(-32, 31) + 32) as u8;
        }
    }
    let q = |i: usize| big_l[i / 16][i % 16];
    // Per 128 values: ql packs values l and l + 64 (and l + 32, l + 96) as nibbles, qh the
    // top two bits of l, l + 32, l + 64, l + 96.
    for half in 0..2 {
        let j = 128 * half;
        for l in 0..32 {
            let (q1, q2, q3, q4) = (q(j + l), q(j + l + 32), q(j + l + 64), q(j + l + 96));
            out[64 * half + l] = (q1 & 0x0F) | ((q3 & 0x0F) << 4);
            out[64 * half + l + 32] = (q2 & 0x0F) | ((q4 & 0x0F) << 4);
            out[128 + 32 * half + l] =
                (q1 >> 4) | ((q2 >> 4) << 2) | ((q3 >> 4) << 4) | ((q4 >> 4) << 6);
        }
    }
    out
}

/// Values in one block of an activation rounded for integer dot products ([`round_q8`]).
pub const Q8_ACT_BLOCK: usize = 32;

/// One block of activations rounded to 8 bits the way integer dot products read them
/// (`tg.matmul`'s `act_q8`, llama.cpp's `q8_1`): the scale `d = amax / 127`, then
/// `q = round(x * (1 / d))` (half away from zero, clamped to [-127, 127]: `1 / d` overflows
/// for blocks below about 4e-37), all in f32; `(d, q)`. A block holding a NaN has a NaN
/// scale (its products are NaN, never a silently finite sum) and its NaN values round to 0.
pub fn round_q8_block(x: &[f32]) -> (f32, Vec<i8>) {
    let amax = x.iter().fold(0f32, |m, v| {
        if m.is_nan() || v.is_nan() {
            f32::NAN
        } else {
            m.max(v.abs())
        }
    });
    let d = amax / 127.0;
    let id = if d != 0.0 { 1.0 / d } else { 0.0 };
    let q = |v: f32| {
        let y = (v * id).clamp(-127.0, 127.0);
        if y.is_nan() {
            0
        } else {
            y.round() as i8
        }
    };
    (d, x.iter().map(|&v| q(v)).collect())
}

/// `x` (rows of `k` values, `k` a multiple of [`Q8_ACT_BLOCK`]) as integer dot products
/// read it: each block's `d * q` ([`round_q8_block`]), exact in f64.
pub fn round_q8(x: &[f32], k: usize) -> Result<Vec<f64>, String> {
    if !k.is_multiple_of(Q8_ACT_BLOCK) || !x.len().is_multiple_of(k.max(1)) {
        return Err(format!(
            "activations rounded to 8 bits need rows of a multiple of {Q8_ACT_BLOCK} values, not {k}"
        ));
    }
    let mut out = Vec::with_capacity(x.len());
    for b in x.chunks(Q8_ACT_BLOCK) {
        let (d, q) = round_q8_block(b);
        out.extend(q.iter().map(|&q| d as f64 * q as f64));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Written by scripts/gen-quant-vectors.py from the `gguf` package and ggml's C reference
    /// (see the script for the format and versions).
    const VECTORS: &[u8] = include_bytes!("../tests/data/ggml-blocks.bin");

    /// One section of a vector file: `blocks` holds the raw blocks and `values` the f32
    /// values on the other side (kind 0: expected dequantization; kind 1: quantizer input).
    struct Section<'a> {
        format: BlockFormat,
        kind: u32,
        blocks: &'a [u8],
        values: Vec<f32>,
    }

    fn take<'a>(data: &'a [u8], pos: &mut usize, n: usize) -> &'a [u8] {
        let s = &data[*pos..*pos + n];
        *pos += n;
        s
    }

    fn u32_at(data: &[u8], pos: &mut usize) -> u32 {
        u32::from_le_bytes(take(data, pos, 4).try_into().unwrap())
    }

    fn f32s(b: &[u8]) -> Vec<f32> {
        b.chunks_exact(4)
            .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
            .collect()
    }

    fn sections(data: &[u8]) -> Vec<Section<'_>> {
        let mut pos = 0;
        assert_eq!(take(data, &mut pos, 8), b"MKCQVEC1");
        let count = u32_at(data, &mut pos);
        let mut out = Vec::new();
        for _ in 0..count {
            let format = BlockFormat::from_ggml_type(u32_at(data, &mut pos)).unwrap();
            let kind = u32_at(data, &mut pos);
            let n = u32_at(data, &mut pos) as usize;
            let (nb, nv) = (n * format.block_bytes(), n * format.block_elems() * 4);
            let (blocks, values) = if kind == 0 {
                let b = take(data, &mut pos, nb);
                (b, f32s(take(data, &mut pos, nv)))
            } else {
                let v = f32s(take(data, &mut pos, nv));
                (take(data, &mut pos, nb), v)
            };
            out.push(Section {
                format,
                kind,
                blocks,
                values,
            });
        }
        assert_eq!(pos, data.len());
        out
    }

    /// Quantizes every kind-1 section's input and compares with its blocks, byte for byte.
    fn check_quantize(data: &[u8]) {
        for s in sections(data).into_iter().filter(|s| s.kind == 1) {
            let mut got = Vec::new();
            s.format.quantize(&s.values, &mut got).unwrap();
            let size = s.format.block_bytes();
            for (i, (g, w)) in got.chunks(size).zip(s.blocks.chunks(size)).enumerate() {
                assert_eq!(g, w, "{:?} block {i}", s.format);
            }
            assert_eq!(got.len(), s.blocks.len());
        }
    }

    #[test]
    fn vectors_cover_every_format_both_ways() {
        let s = sections(VECTORS);
        for f in BlockFormat::ALL {
            for kind in [0, 1] {
                assert!(
                    s.iter().any(|s| s.format == f && s.kind == kind),
                    "{f:?} {kind}"
                );
            }
        }
    }

    #[test]
    fn dequantize_matches_gguf_bit_for_bit() {
        for s in sections(VECTORS).into_iter().filter(|s| s.kind == 0) {
            let mut got = vec![0.0f32; s.values.len()];
            s.format.dequantize(s.blocks, &mut got).unwrap();
            for (i, (g, w)) in got.iter().zip(&s.values).enumerate() {
                let block = i / s.format.block_elems();
                assert_eq!(
                    g.to_bits(),
                    w.to_bits(),
                    "{:?} value {i} (block {block}): {g} vs {w}",
                    s.format
                );
            }
        }
    }

    #[test]
    fn quantize_matches_ggml_reference_bit_for_bit() {
        check_quantize(VECTORS);
    }

    /// Many more blocks than are committed: `scripts/gen-quant-vectors.py ... --many N OUT`,
    /// then `MKC_GGML_VECTORS=OUT cargo test -p mkc-ir quant -- --ignored`.
    #[test]
    #[ignore]
    fn quantize_matches_many_vectors() {
        let path = std::env::var("MKC_GGML_VECTORS").expect("MKC_GGML_VECTORS: a --many file");
        check_quantize(&std::fs::read(path).unwrap());
    }

    /// A small deterministic generator of roughly normal values (sum of uniforms).
    fn normals(seed: u64, n: usize, scale: f32) -> Vec<f32> {
        let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
        let mut uniform = || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 40) as f32 / (1u64 << 24) as f32
        };
        (0..n)
            .map(|_| ((0..4).map(|_| uniform()).sum::<f32>() - 2.0) * scale * 1.7)
            .collect()
    }

    fn round_trip(f: BlockFormat, x: &[f32]) -> Vec<f32> {
        let mut bytes = Vec::new();
        f.quantize(x, &mut bytes).unwrap();
        assert_eq!(bytes.len() as u64, f.storage_bytes(x.len() as u64).unwrap());
        let mut y = vec![0.0; x.len()];
        f.dequantize(&bytes, &mut y).unwrap();
        y
    }

    #[test]
    fn round_trips_stay_within_each_formats_step() {
        for (seed, scale) in [(1, 0.01f32), (2, 1.0), (3, 50.0)] {
            let x = normals(seed, 32 * 64, scale);
            for f in [BlockFormat::Q8_0, BlockFormat::Q4_0, BlockFormat::Q4_1] {
                let y = round_trip(f, &x);
                for (xb, yb) in x.chunks(32).zip(y.chunks(32)) {
                    let amax = xb.iter().fold(0.0f32, |a, v| a.max(v.abs()));
                    let (min, max) = xb
                        .iter()
                        .fold((f32::MAX, f32::MIN), |(lo, hi), &v| (lo.min(v), hi.max(v)));
                    // Half a step (a whole one at Q4_0's unreachable +8), plus the f16 scales' rounding.
                    let bound = match f {
                        BlockFormat::Q8_0 => amax / 127.0 * 0.55,
                        BlockFormat::Q4_0 => amax / 8.0 * 1.01,
                        _ => (max - min) / 15.0 * 0.52 + min.abs() / 1024.0,
                    };
                    for (a, b) in xb.iter().zip(yb) {
                        assert!((a - b).abs() <= bound, "{f:?}: {a} -> {b}, bound {bound}");
                    }
                }
            }
        }
    }

    fn rel_rms(x: &[f32], y: &[f32]) -> f32 {
        let err: f32 = x.iter().zip(y).map(|(a, b)| (a - b) * (a - b)).sum();
        let sig: f32 = x.iter().map(|a| a * a).sum();
        (err / sig).sqrt()
    }

    #[test]
    fn k_quant_round_trips_keep_their_precision() {
        for (seed, scale) in [(4, 0.02f32), (5, 1.0), (6, 30.0)] {
            let x = normals(seed, 256 * 16, scale);
            let (q4, q6) = (
                round_trip(BlockFormat::Q4K, &x),
                round_trip(BlockFormat::Q6K, &x),
            );
            // Typical for normal data: ~0.09 at 4.5 bits per weight, ~0.02 at 6.6.
            assert!(rel_rms(&x, &q4) < 0.11, "q4_k {}", rel_rms(&x, &q4));
            assert!(rel_rms(&x, &q6) < 0.03, "q6_k {}", rel_rms(&x, &q6));
            let max_err = x
                .iter()
                .zip(&q4)
                .fold(0.0f32, |m, (a, b)| m.max((a - b).abs()));
            assert!(max_err < 0.6 * scale, "q4_k max error {max_err}");
        }
    }

    #[test]
    fn zero_input_quantizes_to_zero_blocks() {
        for f in BlockFormat::ALL {
            let x = vec![0.0; f.block_elems() * 2];
            assert_eq!(round_trip(f, &x), x, "{f:?}");
        }
    }

    #[test]
    fn length_errors_are_errors() {
        for f in BlockFormat::ALL {
            let (e, b) = (f.block_elems(), f.block_bytes());
            let mut out = vec![0.0; e];
            assert!(f.dequantize(&vec![0; b - 1], &mut out).is_err());
            assert!(f.dequantize(&vec![0; b + 1], &mut out).is_err());
            assert!(f.dequantize(&vec![0; 2 * b], &mut out).is_err());
            assert!(f.dequantize(&vec![0; b], &mut out[..e - 1]).is_err());
            assert!(f.dequantize(&[], &mut []).is_ok());
            let mut bytes = vec![7u8];
            assert!(f.quantize(&vec![1.0; e + 1], &mut bytes).is_err());
            assert_eq!(bytes, [7], "{f:?}: a failed quantize appends nothing");
            assert!(f.quantize(&[], &mut bytes).is_ok());
            // Short slices: no panic, NaN out.
            f.dequantize_block(&vec![0; b - 1], &mut out);
            assert!(out.iter().all(|v| v.is_nan()));
            let mut short = vec![0.0; e - 1];
            f.dequantize_block(&vec![0; b], &mut short);
            assert!(short.iter().all(|v| v.is_nan()));
            assert_eq!(f.storage_bytes(3 * e as u64), Some(3 * b as u64));
            assert_eq!(f.storage_bytes(e as u64 + 1), None);
            // Only Q8_0 takes more bytes than values, so only it can overflow.
            let most = f.storage_bytes(u64::MAX / e as u64 * e as u64);
            assert_eq!(most.is_none(), f == BlockFormat::Q8_0, "{f:?}");
        }
    }

    #[test]
    fn non_finite_scales_and_inputs_do_not_panic() {
        for f in BlockFormat::ALL {
            let (e, b) = (f.block_elems(), f.block_bytes());
            for scale in [f16::NAN, f16::INFINITY, f16::NEG_INFINITY] {
                let mut block = vec![0x5Au8; b];
                let at = if f == BlockFormat::Q6K { 208 } else { 0 };
                block[at..at + 2].copy_from_slice(&scale.to_bits().to_le_bytes());
                let mut out = vec![0.0; e];
                f.dequantize(&block, &mut out).unwrap();
                assert!(out.iter().any(|v| !v.is_finite()), "{f:?} {scale}");
            }
            for v in [f32::NAN, f32::INFINITY, f32::MAX, -f32::MAX, 1e-40] {
                let mut x = normals(7, e, 1.0);
                x[3] = v;
                let mut bytes = Vec::new();
                f.quantize(&x, &mut bytes).unwrap();
                assert_eq!(bytes.len(), b);
            }
        }
    }

    #[test]
    fn names_and_type_ids_round_trip() {
        for f in BlockFormat::ALL {
            assert_eq!(BlockFormat::from_name(f.name()), Some(f));
            assert_eq!(BlockFormat::from_ggml_type(f.ggml_type()), Some(f));
        }
        let ids: Vec<u32> = BlockFormat::ALL.iter().map(|f| f.ggml_type()).collect();
        assert_eq!(ids, [2, 3, 8, 12, 14]);
        assert_eq!(BlockFormat::from_name("q5_0"), None);
        assert_eq!(BlockFormat::from_ggml_type(0), None);
    }

    #[test]
    fn nibble_order_is_low_half_then_high_half() {
        // Q4_0 with d = 1: byte j = 0x(hi)(lo) puts lo - 8 at j and hi - 8 at j + 16.
        let mut block = [0u8; 18];
        block[..2].copy_from_slice(&f16::ONE.to_bits().to_le_bytes());
        block[2] = 0xA3;
        let mut out = [0.0; 32];
        BlockFormat::Q4_0.dequantize_block(&block, &mut out);
        assert_eq!((out[0], out[16], out[1]), (-5.0, 2.0, -8.0));
    }

    #[test]
    fn q8_rounding_of_activations() {
        let x: Vec<f32> = (0..32).map(|i| (i as f32 - 10.0) * 0.37).collect();
        let (d, q) = round_q8_block(&x);
        assert_eq!(d, 21.0 * 0.37f32 / 127.0);
        // The largest magnitude maps to 127, signs kept, every value within half a step.
        assert_eq!(q[31], 127);
        assert!(q[0] < 0 && q[10] == 0);
        for (v, q) in x.iter().zip(&q) {
            assert!((v - d * *q as f32).abs() <= d * 0.5 + 1e-6, "{v} {q}");
        }
        // Ties round away from zero: 0.5 * d and -1.5 * d.
        let mut t = vec![0f32; 32];
        t[0] = 127.0;
        t[1] = 0.5;
        t[2] = -1.5;
        let (d, q) = round_q8_block(&t);
        assert_eq!(d, 1.0);
        assert_eq!((q[1], q[2]), (1, -2));
        // All zeros: scale 0, values 0; a NaN makes the scale NaN.
        assert_eq!(round_q8_block(&[0.0; 32]), (0.0, vec![0; 32]));
        let mut n = vec![1f32; 32];
        n[5] = f32::NAN;
        assert!(round_q8_block(&n).0.is_nan());
        assert!(round_q8(&n, 32).unwrap().iter().all(|v| v.is_nan()));
        // A block so small that 1 / d overflows still rounds to +-127 with its signs.
        let mut tiny = vec![0f32; 32];
        tiny[0] = 1e-38;
        tiny[1] = -1e-38;
        let (d, q) = round_q8_block(&tiny);
        assert!(d > 0.0 && (1.0 / d).is_infinite());
        assert_eq!((q[0], q[1], q[2]), (127, -127, 0));
        assert!(round_q8(&x, 16).is_err());
    }
}
