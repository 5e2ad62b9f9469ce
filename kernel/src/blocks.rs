//! Block-quantized weights (ggml's Q8_0, Q4_0, Q4_1, Q4_K, Q6_K) in the kernel: a weight
//! lives in two planes (`mkc_ir::quant::BlockFormat::planes`: every block's quantized values,
//! then every block's scales), and is dequantized in registers as it is read: one element at
//! a time for gathers and the generic paths (every format), or, for Q8_0, Q4_0 and Q4_1, a
//! warp per row of a matrix-vector product, each lane taking 16 bytes of quantized values
//! (16 or 32 weights) and their block's scales, the sum accumulated in f32.

use crate::gen::*;
use mkc_ir::quant::BlockFormat;
use mkc_ir::ElemType;

/// The formats whose matrix-vector products take the warp-per-row path of 16-byte loads
/// ([`Gen::block_row_dot`]); the K-quants (256-value super-blocks, packed sub-block scales)
/// are read an element at a time.
pub(crate) fn vector_path(f: BlockFormat) -> bool {
    matches!(f, BlockFormat::Q8_0 | BlockFormat::Q4_0 | BlockFormat::Q4_1)
}

/// The rows, blocks per row and block format of a block-quantized view (always a whole,
/// row-major weight).
fn geometry(view: &View) -> Result<(i64, i64, BlockFormat), String> {
    let ElemType::Block(f) = view.elem else {
        return Err("internal error: not a block-quantized view".into());
    };
    let k = *view.shape.last().ok_or("a block-quantized scalar")?;
    if view.strides != row_major(&view.shape) || view.is_scratch() {
        return Err(format!(
            "internal error: a {} weight viewed with strides {:?}",
            f.name(),
            view.strides
        ));
    }
    let rows = view.shape[..view.shape.len() - 1].iter().product::<i64>();
    Ok((rows, k / f.block_elems() as i64, f))
}

impl Gen {
    /// A byte pointer `at` bytes (an i64) past the view's start.
    fn block_ptr(&mut self, view: &View, at: &str) -> String {
        let a = self.op(format!("arith.addi {}, {at} : i64", view.offset));
        self.op(format!(
            "llvm.getelementptr {}[{a}] : (!llvm.ptr<1>, i64) -> !llvm.ptr<1>, i8",
            view.base
        ))
    }

    /// An f16 scale `at` bytes past `p`, as f32.
    fn scale_at(&mut self, p: &str, at: i64) -> String {
        let p = if at == 0 {
            p.to_string()
        } else {
            let c = self.i64c(at);
            self.op(format!(
                "llvm.getelementptr {p}[{c}] : (!llvm.ptr<1>, i64) -> !llvm.ptr<1>, i8"
            ))
        };
        let h = self.op(format!("llvm.load {p} : !llvm.ptr<1> -> f16"));
        self.op(format!("arith.extf {h} : f16 to f32"))
    }

    /// Pointers to block `blk` (an i64: row * blocks per row + block in the row)'s payload
    /// and scales.
    fn block_parts(&mut self, view: &View, blk: &str) -> Result<(String, String), String> {
        let (rows, nb, f) = geometry(view)?;
        let (payload, meta) = f.planes();
        let pb = self.i64c(payload as i64);
        let po = self.op(format!("arith.muli {blk}, {pb} : i64"));
        let pp = self.block_ptr(view, &po);
        let mb = self.i64c(meta as i64);
        let plane = self.i64c(rows * nb * payload as i64);
        let mo = self.op(format!("arith.muli {blk}, {mb} : i64"));
        let mo = self.op(format!("arith.addi {plane}, {mo} : i64"));
        let mp = self.block_ptr(view, &mo);
        Ok((pp, mp))
    }

    /// The element at `idx` of a block-quantized view, dequantized as ggml does (f32).
    pub(crate) fn load_block_elem(
        &mut self,
        view: &View,
        idx: &[String],
    ) -> Result<String, String> {
        let (_, _, f) = geometry(view)?;
        let mut flat = self.i64c(0);
        for (i, s) in idx.iter().zip(&view.strides) {
            let st = self.i64c(*s as i64);
            let t = self.op(format!("arith.muli {i}, {st} : i64"));
            flat = self.op(format!("arith.addi {flat}, {t} : i64"));
        }
        let be = self.i64c(f.block_elems() as i64);
        let blk = self.op(format!("arith.divsi {flat}, {be} : i64"));
        let j = self.op(format!("arith.remsi {flat}, {be} : i64"));
        let (pp, mp) = self.block_parts(view, &blk)?;
        match f {
            BlockFormat::Q4K => return Ok(self.q4_k_elem(&pp, &mp, &j)),
            BlockFormat::Q6K => return Ok(self.q6_k_elem(&pp, &mp, &j)),
            _ => {}
        }
        let d = self.scale_at(&mp, 0);
        if f == BlockFormat::Q8_0 {
            let qp = self.op(format!(
                "llvm.getelementptr {pp}[{j}] : (!llvm.ptr<1>, i64) -> !llvm.ptr<1>, i8"
            ));
            let q = self.op(format!("llvm.load {qp} : !llvm.ptr<1> -> i8"));
            let q = self.op(format!("arith.sitofp {q} : i8 to f32"));
            return Ok(self.op(format!("arith.mulf {d}, {q} : f32")));
        }
        // 4-bit: byte j % 16 holds value j (low nibble) and value j + 16 (high nibble).
        let c16 = self.i64c(16);
        let byte = self.op(format!("arith.remsi {j}, {c16} : i64"));
        let high = self.op(format!("arith.divsi {j}, {c16} : i64"));
        let qp = self.op(format!(
            "llvm.getelementptr {pp}[{byte}] : (!llvm.ptr<1>, i64) -> !llvm.ptr<1>, i8"
        ));
        let q = self.op(format!("llvm.load {qp} : !llvm.ptr<1> -> i8"));
        let q = self.op(format!("arith.extui {q} : i8 to i32"));
        let c4 = self.op("arith.constant 4 : i32");
        let h32 = self.op(format!("arith.trunci {high} : i64 to i32"));
        let sh = self.op(format!("arith.muli {h32}, {c4} : i32"));
        let q = self.op(format!("arith.shrui {q}, {sh} : i32"));
        let c15 = self.op("arith.constant 15 : i32");
        let q = self.op(format!("arith.andi {q}, {c15} : i32"));
        let qf = self.op(format!("arith.uitofp {q} : i32 to f32"));
        Ok(match f {
            BlockFormat::Q4_0 => {
                let c8 = self.f32c(8.0);
                let x = self.op(format!("arith.subf {qf}, {c8} : f32"));
                self.op(format!("arith.mulf {x}, {d} : f32"))
            }
            _ => {
                let m = self.scale_at(&mp, 2);
                let x = self.op(format!("arith.mulf {qf}, {d} : f32"));
                self.op(format!("arith.addf {x}, {m} : f32"))
            }
        })
    }

    /// The dot product of row `row` (an i64) of the block-quantized weight `w` with the
    /// input row at `a` (contiguous, f32 or bf16, 16-byte aligned): lane l takes the
    /// 16-byte pieces of quantized values l, l + 32, ... (a Q8_0 block has two, a 4-bit one
    /// one), each scaled by its block's scales once, and the lanes' sums are combined by
    /// shuffles (every lane gets the total).
    #[allow(clippy::too_many_arguments)]
    fn block_row_dot(
        &mut self,
        w: &View,
        row: &str,
        a: &str,
        a_of: &View,
        sub: &str,
        lanes: i64,
    ) -> Result<String, String> {
        let (_, nb, f) = geometry(w)?;
        let per_block = (f.planes().0 / 16) as i64;
        let pieces = nb * per_block;
        // Pieces a lane loads a round, all before any math; the loop bound keeps lanes past
        // the row's end out when it is 1. (Four a round spilled registers.)
        let unroll = if pieces % (2 * lanes) == 0 { 2 } else { 1 };
        let nbc = self.i64c(nb);
        let first = self.op(format!("arith.muli {row}, {nbc} : i64"));
        let p = self.fresh();
        let acc = self.fresh();
        let res = self.fresh();
        let pn = self.idx(pieces);
        let step = self.idx(lanes * unroll);
        let zero = self.f32c(0.0);
        self.open(format!(
            "{res} = scf.for {p} = {sub} to {pn} step {step} iter_args({acc} = {zero}) -> (f32) {{"
        ));
        let p0 = self.op(format!("arith.index_cast {p} : index to i64"));
        let ppb = self.i64c(per_block);
        let c16 = self.i64c(16);
        let be = self.i64c(f.block_elems() as i64);
        let mut loaded = Vec::new();
        for u in 0..unroll {
            let du = self.i64c(lanes * u);
            let p64 = self.op(format!("arith.addi {p0}, {du} : i64"));
            let b = self.op(format!("arith.divsi {p64}, {ppb} : i64"));
            let half = self.op(format!("arith.remsi {p64}, {ppb} : i64"));
            let blk = self.op(format!("arith.addi {first}, {b} : i64"));
            let (pp, mp) = self.block_parts(w, &blk)?;
            let off = self.op(format!("arith.muli {half}, {c16} : i64"));
            let qp = self.op(format!(
                "llvm.getelementptr {pp}[{off}] : (!llvm.ptr<1>, i64) -> !llvm.ptr<1>, i8"
            ));
            let words = self.op(format!(
                "llvm.load {qp} {{alignment = 16 : i64}} : !llvm.ptr<1> -> vector<4xi32>"
            ));
            let d = self.scale_at(&mp, 0);
            let m = (f == BlockFormat::Q4_1).then(|| self.scale_at(&mp, 2));
            // The piece's first input element.
            let k0 = self.op(format!("arith.muli {b}, {be} : i64"));
            let k0 = self.op(format!("arith.addi {k0}, {off} : i64"));
            loaded.push((words, d, m, k0));
        }
        let mut next = acc.clone();
        for (words, d, m, k0) in loaded {
            let (sum_qx, sum_x) = if f == BlockFormat::Q8_0 {
                self.q8_piece(&words, a, a_of, &k0)
            } else {
                self.q4_piece(&words, a, a_of, &k0, f == BlockFormat::Q4_1)
            };
            let t = self.op(format!("arith.mulf {d}, {sum_qx} : f32"));
            let t = match (m, sum_x) {
                (Some(m), Some(sx)) => {
                    let mt = self.op(format!("arith.mulf {m}, {sx} : f32"));
                    self.op(format!("arith.addf {t}, {mt} : f32"))
                }
                _ => t,
            };
            next = self.op(format!("arith.addf {next}, {t} : f32"));
        }
        self.line(format!("scf.yield {next} : f32"));
        self.close("}");
        Ok(self.lanes_combine(res, lanes, false))
    }

    /// `res[.., n] = x · w[n, :]` for the rows n of the region `need` of a block-quantized
    /// weight: a group of lanes per row, sized so that each lane has about four 16-byte
    /// pieces of the row to load (a row of Q4_0 blocks is a quarter of its bf16 bytes:
    /// a warp on one row would have too few loads in flight), the groups of a warp on
    /// consecutive rows; every group runs the same rounds, so the shuffles that combine a
    /// group's lanes see the whole warp.
    pub(crate) fn block_matvec(
        &mut self,
        a: &View,
        w: &View,
        res: &View,
        need: &[RBox],
    ) -> Result<(), String> {
        let (_, nb, f) = geometry(w)?;
        let pieces = nb * (f.planes().0 / 16) as i64;
        let lanes = [32i64, 16, 8]
            .into_iter()
            .find(|&l| pieces >= 4 * l)
            .unwrap_or(4);
        let groups = 32 / lanes;
        if need.is_empty() {
            return Ok(());
        }
        let (boxes, total) = self.region_boxes(need);
        let gc = self.i64c(groups);
        let g1 = self.i64c(groups - 1);
        let rounds = self.op(format!("arith.addi {total}, {g1} : i64"));
        let rounds = self.op(format!("arith.divsi {rounds}, {gc} : i64"));
        let rounds = self.op(format!("arith.index_cast {rounds} : i64 to index"));
        let lc = self.idx(lanes);
        let sub = self.op(format!("arith.remui %lane, {lc} : index"));
        let g = self.op(format!("arith.divui %lane, {lc} : index"));
        let g64 = self.op(format!("arith.index_cast {g} : index to i64"));
        let one = self.i64c(1);
        let last = self.op(format!("arith.subi {total}, {one} : i64"));
        let i = self.fresh();
        self.open(format!("scf.for {i} = %warp to {rounds} step %nwarps {{"));
        let i64v = self.op(format!("arith.index_cast {i} : index to i64"));
        let r = self.op(format!("arith.muli {i64v}, {gc} : i64"));
        let r = self.op(format!("arith.addi {r}, {g64} : i64"));
        let valid = self.op(format!("arith.cmpi slt, {r}, {total} : i64"));
        let li = self.op(format!("arith.minsi {r}, {last} : i64"));
        let o = self.region_index(need, &boxes, &li);
        let n = o
            .last()
            .ok_or("a product's rows are its last axis")?
            .clone();
        let z = self.i64c(0);
        let mut ai: Vec<String> = o[..a.shape.len() - 1].to_vec();
        ai.push(z);
        let row_a = self.ptr(a, &ai);
        let acc = self.block_row_dot(w, &n, &row_a, a, &sub, lanes)?;
        let zi = self.idx(0);
        let first = self.op(format!("arith.cmpi eq, {sub}, {zi} : index"));
        let st = self.op(format!("arith.andi {valid}, {first} : i1"));
        self.open(format!("scf.if {st} {{"));
        self.store(res, &o, &acc)?;
        self.close("}");
        self.close("}");
        Ok(())
    }

    /// `2^23 + u` as f32 from an integer `u` < 2^23 in the low bits of an i32 (or-ed into the
    /// mantissa of 2^23), less `bias`: `u - bias` exactly, in two full-rate instructions
    /// instead of a quarter-rate conversion.
    fn small_int_to_f32(&mut self, u: &str, bias: f64) -> String {
        let magic = self.op("arith.constant 1258291200 : i32"); // 0x4B000000: 2^23
        let m = self.op(format!("arith.ori {u}, {magic} : i32"));
        let f = self.op(format!("arith.bitcast {m} : i32 to f32"));
        let b = self.f32c(8388608.0 + bias);
        self.op(format!("arith.subf {f}, {b} : f32"))
    }

    /// 16 int8 weights (a Q8_0 half block, as 4 words) times inputs k0..k0+16: Σ q·x, in two
    /// independent sums (shorter chains of dependent adds).
    fn q8_piece(
        &mut self,
        words: &str,
        a: &str,
        a_of: &View,
        k0: &str,
    ) -> (String, Option<String>) {
        let mut sums = Vec::new();
        let (c255, c128) = (
            self.op("arith.constant 255 : i32"),
            self.op("arith.constant 128 : i32"),
        );
        for half in 0..2 {
            let dk = self.i64c(8 * half);
            let k = self.op(format!("arith.addi {k0}, {dk} : i64"));
            let xv = self.input_block8(a, a_of, &k);
            let xf = self.widen8(&xv, a_of.elem);
            let mut sum = self.f32c(0.0);
            for j in 0..8 {
                let word = self.extract_word(words, (8 * half + j) / 4);
                let sh = self.op(format!("arith.constant {} : i32", 8 * (j % 4)));
                // Byte j % 4 of the word, its sign bit flipped: q + 128 in 0..256.
                let b = self.op(format!("arith.shrui {word}, {sh} : i32"));
                let b = self.op(format!("arith.andi {b}, {c255} : i32"));
                let b = self.op(format!("arith.xori {b}, {c128} : i32"));
                let qf = self.small_int_to_f32(&b, 128.0);
                let x = self.extract_f32(&xf, j);
                // A fused multiply-add: arith's mulf and addf lower to mul.rn and add.rn,
                // which ptxas may not contract.
                sum = self.op(format!(
                    "llvm.intr.fma({qf}, {x}, {sum}) : (f32, f32, f32) -> f32"
                ));
            }
            sums.push(sum);
        }
        let sum = self.op(format!("arith.addf {}, {} : f32", sums[0], sums[1]));
        (sum, None)
    }

    /// A 4-bit block's 16 bytes (as 4 words) times inputs k0..k0+32 (byte t: value t in its
    /// low nibble, value t + 16 in its high one): Σ q·x (Q4_0's q less 8), and Σ x for
    /// Q4_1's minimum; four independent sums, one per 8 inputs.
    fn q4_piece(
        &mut self,
        words: &str,
        a: &str,
        a_of: &View,
        k0: &str,
        with_min: bool,
    ) -> (String, Option<String>) {
        let mut sums = Vec::new();
        let mut sums_x = Vec::new();
        let c15 = self.op("arith.constant 15 : i32");
        let bias = if with_min { 0.0 } else { 8.0 };
        for quarter in 0..4 {
            let dk = self.i64c(8 * quarter);
            let k = self.op(format!("arith.addi {k0}, {dk} : i64"));
            let xv = self.input_block8(a, a_of, &k);
            let xf = self.widen8(&xv, a_of.elem);
            let mut sum = self.f32c(0.0);
            let mut sum_x = self.f32c(0.0);
            for j in 0..8 {
                // Value v = 8 * quarter + j: byte v % 16, the high nibble for v >= 16.
                let v = 8 * quarter + j;
                let (byte, high) = (v % 16, v >= 16);
                let word = self.extract_word(words, byte / 4);
                let sh = 8 * (byte % 4) + if high { 4 } else { 0 };
                let shc = self.op(format!("arith.constant {sh} : i32"));
                let q = self.op(format!("arith.shrui {word}, {shc} : i32"));
                let q = self.op(format!("arith.andi {q}, {c15} : i32"));
                let qf = self.small_int_to_f32(&q, bias);
                let x = self.extract_f32(&xf, j);
                // A fused multiply-add: arith's mulf and addf lower to mul.rn and add.rn,
                // which ptxas may not contract.
                sum = self.op(format!(
                    "llvm.intr.fma({qf}, {x}, {sum}) : (f32, f32, f32) -> f32"
                ));
                if with_min {
                    sum_x = self.op(format!("arith.addf {sum_x}, {x} : f32"));
                }
            }
            sums.push(sum);
            sums_x.push(sum_x);
        }
        let tree = |g: &mut Gen, v: &[String]| {
            let a = g.op(format!("arith.addf {}, {} : f32", v[0], v[1]));
            let b = g.op(format!("arith.addf {}, {} : f32", v[2], v[3]));
            g.op(format!("arith.addf {a}, {b} : f32"))
        };
        let sum = tree(self, &sums);
        let sum_x = with_min.then(|| tree(self, &sums_x));
        (sum, sum_x)
    }

    /// Byte `at` (an i64) past `p`, as i32 (zero-extended).
    fn byte_at(&mut self, p: &str, at: &str) -> String {
        let bp = self.op(format!(
            "llvm.getelementptr {p}[{at}] : (!llvm.ptr<1>, i64) -> !llvm.ptr<1>, i8"
        ));
        let b = self.op(format!("llvm.load {bp} : !llvm.ptr<1> -> i8"));
        self.op(format!("arith.extui {b} : i8 to i32"))
    }

    /// `v >> sh & mask` on i32, the shift and mask constants.
    fn bits(&mut self, v: &str, sh: i64, mask: i64) -> String {
        let s = self.op(format!("arith.constant {sh} : i32"));
        let m = self.op(format!("arith.constant {mask} : i32"));
        let x = self.op(format!("arith.shrui {v}, {s} : i32"));
        self.op(format!("arith.andi {x}, {m} : i32"))
    }

    /// Value `j` (an i64 in 0..256) of a Q4_K super-block: 8 sub-blocks of 32, each with a
    /// 6-bit scale and minimum (ggml's `get_scale_min_k4`); `d * sc * q - dmin * m`.
    fn q4_k_elem(&mut self, pp: &str, mp: &str, j: &str) -> String {
        let c = |g: &mut Gen, x: i64| g.i64c(x);
        let (c32, c64) = (c(self, 32), c(self, 64));
        let chunk = self.op(format!("arith.divsi {j}, {c64} : i64"));
        let within = self.op(format!("arith.remsi {j}, {c64} : i64"));
        let l = self.op(format!("arith.remsi {within}, {c32} : i64"));
        let high = self.op(format!("arith.divsi {within}, {c32} : i64"));
        // The byte of nibbles: low nibble for the chunk's first 32 values, high for the rest.
        let at = self.op(format!("arith.muli {chunk}, {c32} : i64"));
        let at = self.op(format!("arith.addi {at}, {l} : i64"));
        let q = self.byte_at(pp, &at);
        let c4 = self.op("arith.constant 4 : i32");
        let h32 = self.op(format!("arith.trunci {high} : i64 to i32"));
        let sh = self.op(format!("arith.muli {h32}, {c4} : i32"));
        let q = self.op(format!("arith.shrui {q}, {sh} : i32"));
        let q = self.bits(&q, 0, 15);
        // Sub-block sb = 2 * chunk + high; its scale and minimum from the 12 packed bytes
        // at meta[4..16]: bytes sb, sb + 4 and (sb + 8) % 12 (= sb - 4 when sb >= 4).
        let two = c(self, 2);
        let sb = self.op(format!("arith.muli {chunk}, {two} : i64"));
        let sb = self.op(format!("arith.addi {sb}, {high} : i64"));
        let (c4i, c8, c12) = (c(self, 4), c(self, 8), c(self, 12));
        let o_a = self.op(format!("arith.addi {sb}, {c4i} : i64"));
        let o_b = self.op(format!("arith.addi {o_a}, {c4i} : i64"));
        let o_c = self.op(format!("arith.addi {sb}, {c8} : i64"));
        let o_c = self.op(format!("arith.remsi {o_c}, {c12} : i64"));
        let o_c = self.op(format!("arith.addi {o_c}, {c4i} : i64"));
        let a = self.byte_at(mp, &o_a);
        let b = self.byte_at(mp, &o_b);
        let cc = self.byte_at(mp, &o_c);
        let sc_lo = self.bits(&a, 0, 63);
        let m_lo = self.bits(&b, 0, 63);
        let bl = self.bits(&b, 0, 15);
        let ch = self.bits(&cc, 6, 3);
        let ch = self.op(format!("arith.shli {ch}, {c4} : i32"));
        let sc_hi = self.op(format!("arith.ori {bl}, {ch} : i32"));
        let bh = self.bits(&b, 4, 15);
        let ah = self.bits(&a, 6, 3);
        let ah = self.op(format!("arith.shli {ah}, {c4} : i32"));
        let m_hi = self.op(format!("arith.ori {bh}, {ah} : i32"));
        let first = self.op(format!("arith.cmpi slt, {sb}, {c4i} : i64"));
        let sc = self.op(format!("arith.select {first}, {sc_lo}, {sc_hi} : i32"));
        let m = self.op(format!("arith.select {first}, {m_lo}, {m_hi} : i32"));
        let d = self.scale_at(mp, 0);
        let dmin = self.scale_at(mp, 2);
        let scf = self.op(format!("arith.uitofp {sc} : i32 to f32"));
        let mf = self.op(format!("arith.uitofp {m} : i32 to f32"));
        let qf = self.op(format!("arith.uitofp {q} : i32 to f32"));
        let d1 = self.op(format!("arith.mulf {d}, {scf} : f32"));
        let m1 = self.op(format!("arith.mulf {dmin}, {mf} : f32"));
        let y = self.op(format!("arith.mulf {d1}, {qf} : f32"));
        self.op(format!("arith.subf {y}, {m1} : f32"))
    }

    /// Value `j` (an i64 in 0..256) of a Q6_K super-block: 4 bits from `ql`, 2 from `qh`,
    /// less 32, times `d` and its 16-value group's int8 scale (meta: 16 scales, then d).
    fn q6_k_elem(&mut self, pp: &str, mp: &str, j: &str) -> String {
        let c = |g: &mut Gen, x: i64| g.i64c(x);
        let (c2, c16, c32, c64, c128) = (
            c(self, 2),
            c(self, 16),
            c(self, 32),
            c(self, 64),
            c(self, 128),
        );
        let n = self.op(format!("arith.divsi {j}, {c128} : i64"));
        let r = self.op(format!("arith.remsi {j}, {c128} : i64"));
        let quarter = self.op(format!("arith.divsi {r}, {c32} : i64"));
        let l = self.op(format!("arith.remsi {r}, {c32} : i64"));
        // ql: byte 64n + l + 32 (quarter % 2), its high nibble for quarters 2 and 3.
        let odd = self.op(format!("arith.remsi {quarter}, {c2} : i64"));
        let at = self.op(format!("arith.muli {n}, {c64} : i64"));
        let at = self.op(format!("arith.addi {at}, {l} : i64"));
        let o32 = self.op(format!("arith.muli {odd}, {c32} : i64"));
        let at = self.op(format!("arith.addi {at}, {o32} : i64"));
        let ql = self.byte_at(pp, &at);
        let upper = self.op(format!("arith.divsi {quarter}, {c2} : i64"));
        let u32v = self.op(format!("arith.trunci {upper} : i64 to i32"));
        let c4 = self.op("arith.constant 4 : i32");
        let sh = self.op(format!("arith.muli {u32v}, {c4} : i32"));
        let lo = self.op(format!("arith.shrui {ql}, {sh} : i32"));
        let lo = self.bits(&lo, 0, 15);
        // qh: byte 128 + 32n + l, bits 2 * quarter.
        let at = self.op(format!("arith.muli {n}, {c32} : i64"));
        let at = self.op(format!("arith.addi {at}, {l} : i64"));
        let at = self.op(format!("arith.addi {at}, {c128} : i64"));
        let qh = self.byte_at(pp, &at);
        let q32 = self.op(format!("arith.trunci {quarter} : i64 to i32"));
        let two = self.op("arith.constant 2 : i32");
        let sh = self.op(format!("arith.muli {q32}, {two} : i32"));
        let hi = self.op(format!("arith.shrui {qh}, {sh} : i32"));
        let hi = self.bits(&hi, 0, 3);
        let hi = self.op(format!("arith.shli {hi}, {c4} : i32"));
        let q = self.op(format!("arith.ori {lo}, {hi} : i32"));
        let c32i = self.op("arith.constant 32 : i32");
        let q = self.op(format!("arith.subi {q}, {c32i} : i32"));
        // Scale 8n + l / 16 + 2 * quarter, an int8.
        let c8 = c(self, 8);
        let at = self.op(format!("arith.muli {n}, {c8} : i64"));
        let is = self.op(format!("arith.divsi {l}, {c16} : i64"));
        let at = self.op(format!("arith.addi {at}, {is} : i64"));
        let q2 = self.op(format!("arith.muli {quarter}, {c2} : i64"));
        let at = self.op(format!("arith.addi {at}, {q2} : i64"));
        let sp = self.op(format!(
            "llvm.getelementptr {mp}[{at}] : (!llvm.ptr<1>, i64) -> !llvm.ptr<1>, i8"
        ));
        let sc = self.op(format!("llvm.load {sp} : !llvm.ptr<1> -> i8"));
        let scf = self.op(format!("arith.sitofp {sc} : i8 to f32"));
        let d = self.scale_at(mp, 16);
        let qf = self.op(format!("arith.sitofp {q} : i32 to f32"));
        let ds = self.op(format!("arith.mulf {d}, {scf} : f32"));
        self.op(format!("arith.mulf {ds}, {qf} : f32"))
    }

    fn extract_word(&mut self, words: &str, i: i64) -> String {
        let c = self.op(format!("arith.constant {i} : i32"));
        self.op(format!(
            "llvm.extractelement {words}[{c} : i32] : vector<4xi32>"
        ))
    }

    fn extract_f32(&mut self, v: &str, i: i64) -> String {
        let c = self.op(format!("arith.constant {i} : i32"));
        self.op(format!(
            "llvm.extractelement {v}[{c} : i32] : vector<8xf32>"
        ))
    }
}
