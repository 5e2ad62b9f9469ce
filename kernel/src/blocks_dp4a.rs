//! Products of block-quantized weights (Q8_0, Q4_0, Q4_1) by an activation rounded to 8
//! bits (`tg.matmul`'s `act_q8`), on integer dot products: the task first rounds its input
//! row into a scratch buffer ([`Q8Row`]), every lane then multiplies a 16-byte piece of
//! quantized values by the matching 16 or 32 int8 inputs with `dp4a` (four products and
//! their sum an instruction) and scales the integer sum once per piece. The loop over rows
//! and pieces is the `blocks` path's ([`Gen::block_matvec`]).

use crate::gen::*;
use mkc_ir::dialect::kernel::TraceMark;
use mkc_ir::quant::{BlockFormat, Q8_ACT_BLOCK};
use mkc_ir::ElemType;

/// Where a rounded input row lives in its buffer (bytes): the first 16 values of every
/// block (`lo`, 16 bytes a block), the last 16 (`hi`), then every block's scale `d` and
/// `s = d * sum(q)` (two f32). `hi` starts 64 bytes past a multiple of 128 after `lo`, so
/// the eight lanes of a quarter-warp reading alternate halves (Q8_0 pieces) hit different
/// banks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Q8Row {
    pub(crate) blocks: i64,
    pub(crate) hi: i64,
    pub(crate) scales: i64,
    pub(crate) bytes: i64,
}

impl Q8Row {
    pub(crate) fn of(k: i64) -> Q8Row {
        let blocks = k / Q8_ACT_BLOCK as i64;
        let hi = (16 * blocks + 127) / 128 * 128 + 64;
        let scales = hi + 16 * blocks;
        Q8Row {
            blocks,
            hi,
            scales,
            bytes: scales + 8 * blocks,
        }
    }

    /// The buffer as a scratch value: f32 words.
    pub(crate) fn words(&self) -> i64 {
        (self.bytes + 3) / 4
    }
}

impl Gen {
    /// A pointer `at` (an i64) bytes into the buffer `x8`.
    fn q8_ptr(&mut self, x8: &View, at: &str) -> String {
        let o = self.op(format!("arith.addi {}, {at} : i64", x8.offset));
        self.op(format!(
            "llvm.getelementptr {}[{o}] : (!llvm.ptr<{s}>, i64) -> !llvm.ptr<{s}>, i8",
            x8.base,
            s = x8.space
        ))
    }

    /// Rounds the input row at `row_a` (`k` values of `a`'s element type) into `x8` as
    /// [`Q8Row`] lays it out, as [`mkc_ir::quant::round_q8_block`] does: four lanes a block
    /// of 32, eight values each, the block's largest magnitude and its sum of integers
    /// combined by shuffles. Barriers before (the buffer's last readers) and after.
    pub(crate) fn round_row_q8(
        &mut self,
        row_a: &str,
        a: &View,
        k: i64,
        x8: &View,
    ) -> Result<(), String> {
        let lay = Q8Row::of(k);
        let items = lay.blocks * 4;
        let threads = self.threads as i64;
        let rounds = (items + threads - 1) / threads;
        self.barrier();
        let r = self.fresh();
        let (z, n, one) = (self.idx(0), self.idx(rounds), self.idx(1));
        // Every thread runs every round (the shuffles need whole warps); threads past the
        // last block repeat it and store nothing.
        self.open(format!("scf.for {r} = {z} to {n} step {one} {{"));
        let r64 = self.op(format!("arith.index_cast {r} : index to i64"));
        let tc = self.i64c(threads);
        let i = self.op(format!("arith.muli {r64}, {tc} : i64"));
        let i = self.op(format!("arith.addi {i}, %tid64 : i64"));
        let ic = self.i64c(items);
        let valid = self.op(format!("arith.cmpi slt, {i}, {ic} : i64"));
        let last = self.i64c(items - 1);
        let i = self.op(format!("arith.minsi {i}, {last} : i64"));
        let c4 = self.i64c(4);
        let b = self.op(format!("arith.divsi {i}, {c4} : i64"));
        let part = self.op(format!("arith.remsi {i}, {c4} : i64"));
        let c8 = self.i64c(8);
        let k0 = self.op(format!("arith.muli {i}, {c8} : i64"));
        let eb = self.i64c(a.elem.bytes() as i64);
        let at = self.op(format!("arith.muli {k0}, {eb} : i64"));
        let sp = a.space;
        let p = self.op(format!(
            "llvm.getelementptr {row_a}[{at}] : (!llvm.ptr<{sp}>, i64) -> !llvm.ptr<{sp}>, i8"
        ));
        let mut xs = Vec::new();
        // 16-byte loads where the row is contiguous and aligned; else an element at a time.
        let vector = a.strides.last() == Some(&1) && (a.is_scratch() || a.base_aligned);
        match a.elem {
            _ if !vector => {
                for j in 0..8 {
                    let jc = self.i64c(j);
                    let kj = self.op(format!("arith.addi {k0}, {jc} : i64"));
                    let mut idx: Vec<String> = (1..a.shape.len()).map(|_| self.i64c(0)).collect();
                    idx.push(kj);
                    xs.push(self.load(a, &idx)?);
                }
            }
            ElemType::BF16 => {
                let v = self.op(format!(
                    "llvm.load {p} {{alignment = 16 : i64}} : !llvm.ptr<{sp}> -> vector<8xbf16>"
                ));
                let v = self.op(format!("arith.extf {v} : vector<8xbf16> to vector<8xf32>"));
                for j in 0..8 {
                    let c = self.op(format!("arith.constant {j} : i32"));
                    xs.push(self.op(format!(
                        "llvm.extractelement {v}[{c} : i32] : vector<8xf32>"
                    )));
                }
            }
            ElemType::F32 => {
                for h in 0..2 {
                    let o = self.i64c(16 * h);
                    let ph = self.op(format!(
                        "llvm.getelementptr {p}[{o}] : (!llvm.ptr<{sp}>, i64) -> !llvm.ptr<{sp}>, i8"
                    ));
                    let v = self.op(format!(
                        "llvm.load {ph} {{alignment = 16 : i64}} : !llvm.ptr<{sp}> -> vector<4xf32>"
                    ));
                    for j in 0..4 {
                        let c = self.op(format!("arith.constant {j} : i32"));
                        xs.push(self.op(format!(
                            "llvm.extractelement {v}[{c} : i32] : vector<4xf32>"
                        )));
                    }
                }
            }
            e => {
                return Err(format!(
                    "internal error: an int8 product of {e} activations"
                ))
            }
        }
        // The block's largest magnitude (NaN if any value is), its scale and inverse.
        let mut amax = self.f32c(0.0);
        for x in &xs {
            let ax = self.abs_f32(x);
            amax = self.op(format!("arith.maximumf {amax}, {ax} : f32"));
        }
        let amax = self.lanes_combine(amax, 4, true);
        let c127 = self.f32c(127.0);
        let d = self.op(format!("arith.divf {amax}, {c127} : f32"));
        let (zf, onef) = (self.f32c(0.0), self.f32c(1.0));
        let inv = self.op(format!("arith.divf {onef}, {d} : f32"));
        let nz = self.op(format!("arith.cmpf une, {d}, {zf} : f32"));
        let id = self.op(format!("arith.select {nz}, {inv}, {zf} : f32"));
        let mut qs = Vec::new();
        let mut sum = self.op("arith.constant 0 : i32");
        let (lo, hi) = (self.f32c(-127.0), self.f32c(127.0));
        for x in &xs {
            let y = self.op(format!("arith.mulf {x}, {id} : f32"));
            let y = self.op(format!("arith.minimumf {y}, {hi} : f32"));
            let y = self.op(format!("arith.maximumf {y}, {lo} : f32"));
            let q = self.round_to_i32(&y);
            sum = self.op(format!("arith.addi {sum}, {q} : i32"));
            qs.push(q);
        }
        let sum = self.op(format!("arith.sitofp {sum} : i32 to f32"));
        let sum = self.lanes_combine(sum, 4, false);
        // Eight int8s in two words, little-endian.
        let mask = self.op("arith.constant 255 : i32");
        let mut words = Vec::new();
        for w in 0..2 {
            let mut acc = self.op("arith.constant 0 : i32");
            for j in 0..4 {
                let q = self.op(format!("arith.andi {}, {mask} : i32", qs[4 * w + j]));
                let sh = self.op(format!("arith.constant {} : i32", 8 * j));
                let q = self.op(format!("arith.shli {q}, {sh} : i32"));
                acc = self.op(format!("arith.ori {acc}, {q} : i32"));
            }
            words.push(acc);
        }
        let mut v = self.op("llvm.mlir.undef : vector<2xi32>");
        for (j, w) in words.iter().enumerate() {
            let c = self.op(format!("arith.constant {j} : i32"));
            v = self.op(format!(
                "llvm.insertelement {w}, {v}[{c} : i32] : vector<2xi32>"
            ));
        }
        self.open(format!("scf.if {valid} {{"));
        // Values 8 part .. 8 part + 8 of block b: half part / 2, 8 (part % 2) bytes in.
        let c2 = self.i64c(2);
        let half = self.op(format!("arith.divsi {part}, {c2} : i64"));
        let odd = self.op(format!("arith.remsi {part}, {c2} : i64"));
        let hic = self.i64c(lay.hi);
        let at = self.op(format!("arith.muli {half}, {hic} : i64"));
        let c16 = self.i64c(16);
        let bo = self.op(format!("arith.muli {b}, {c16} : i64"));
        let at = self.op(format!("arith.addi {at}, {bo} : i64"));
        let oo = self.op(format!("arith.muli {odd}, {c8} : i64"));
        let at = self.op(format!("arith.addi {at}, {oo} : i64"));
        let qp = self.q8_ptr(x8, &at);
        self.line(format!(
            "llvm.store {v}, {qp} {{alignment = 8 : i64}} : vector<2xi32>, !llvm.ptr<{}>",
            x8.space
        ));
        let z64 = self.i64c(0);
        let first = self.op(format!("arith.cmpi eq, {part}, {z64} : i64"));
        self.open(format!("scf.if {first} {{"));
        let s = self.op(format!("arith.mulf {d}, {sum} : f32"));
        let mut ds = self.op("llvm.mlir.undef : vector<2xf32>");
        for (j, x) in [&d, &s].into_iter().enumerate() {
            let c = self.op(format!("arith.constant {j} : i32"));
            ds = self.op(format!(
                "llvm.insertelement {x}, {ds}[{c} : i32] : vector<2xf32>"
            ));
        }
        let sc = self.i64c(lay.scales);
        let at = self.op(format!("arith.muli {b}, {c8} : i64"));
        let at = self.op(format!("arith.addi {at}, {sc} : i64"));
        let sp8 = self.q8_ptr(x8, &at);
        self.line(format!(
            "llvm.store {ds}, {sp8} {{alignment = 8 : i64}} : vector<2xf32>, !llvm.ptr<{}>",
            x8.space
        ));
        self.close("}");
        self.close("}");
        self.close("}");
        self.barrier();
        crate::megakernel::trace_mark(self, TraceMark::InputRounded);
        Ok(())
    }

    /// A 16-byte piece (`words`: piece `p`, an i64 within its row of `k` inputs) times the
    /// rounded inputs it pairs with, in the terms [`Gen::block_matvec`] scales by the
    /// piece's `d` (and Q4_1's minimum): Q8_0 `dx * Σ q·qx` over its half block; Q4_0
    /// `dx * Σ q·qx - 8 s`; Q4_1 `dx * Σ q·qx` and `s`, where `dx` and `s` are the input
    /// block's scale and `dx * Σ qx`.
    pub(crate) fn piece_dot_q8(
        &mut self,
        f: BlockFormat,
        words: &str,
        p: &str,
        k: i64,
        x8: &View,
    ) -> (String, Option<String>) {
        let lay = Q8Row::of(k);
        let ws: Vec<String> = (0..4).map(|i| self.extract_word(words, i)).collect();
        let c16 = self.i64c(16);
        let load16 = |g: &mut Gen, at: &str| -> Vec<String> {
            let ptr = g.q8_ptr(x8, at);
            let v = g.op(format!(
                "llvm.load {ptr} {{alignment = 16 : i64}} : !llvm.ptr<{}> -> vector<4xi32>",
                x8.space
            ));
            (0..4).map(|i| g.extract_word(&v, i)).collect()
        };
        let mut acc = self.op("arith.constant 0 : i32");
        let b = if f == BlockFormat::Q8_0 {
            // Half p % 2 of block p / 2.
            let c2 = self.i64c(2);
            let b = self.op(format!("arith.divsi {p}, {c2} : i64"));
            let half = self.op(format!("arith.remsi {p}, {c2} : i64"));
            let hic = self.i64c(lay.hi);
            let at = self.op(format!("arith.muli {half}, {hic} : i64"));
            let bo = self.op(format!("arith.muli {b}, {c16} : i64"));
            let at = self.op(format!("arith.addi {at}, {bo} : i64"));
            let x = load16(self, &at);
            for i in 0..4 {
                acc = self.dp4a(&ws[i], &x[i], &acc);
            }
            b
        } else {
            // Byte t holds value t (low nibble) and value t + 16 (high nibble).
            let bo = self.op(format!("arith.muli {p}, {c16} : i64"));
            let lo = load16(self, &bo);
            let hic = self.i64c(lay.hi);
            let at = self.op(format!("arith.addi {bo}, {hic} : i64"));
            let hi = load16(self, &at);
            let m = self.op("arith.constant 252645135 : i32"); // 0x0F0F0F0F
            let four = self.op("arith.constant 4 : i32");
            for i in 0..4 {
                let l = self.op(format!("arith.andi {}, {m} : i32", ws[i]));
                acc = self.dp4a(&l, &lo[i], &acc);
                let h = self.op(format!("arith.shrui {}, {four} : i32", ws[i]));
                let h = self.op(format!("arith.andi {h}, {m} : i32"));
                acc = self.dp4a(&h, &hi[i], &acc);
            }
            p.to_string()
        };
        let c8 = self.i64c(8);
        let sc = self.i64c(lay.scales);
        let at = self.op(format!("arith.muli {b}, {c8} : i64"));
        let at = self.op(format!("arith.addi {at}, {sc} : i64"));
        let ptr = self.q8_ptr(x8, &at);
        let ds = self.op(format!(
            "llvm.load {ptr} {{alignment = 8 : i64}} : !llvm.ptr<{}> -> vector<2xf32>",
            x8.space
        ));
        let c0 = self.op("arith.constant 0 : i32");
        let c1 = self.op("arith.constant 1 : i32");
        let dx = self.op(format!(
            "llvm.extractelement {ds}[{c0} : i32] : vector<2xf32>"
        ));
        let s = self.op(format!(
            "llvm.extractelement {ds}[{c1} : i32] : vector<2xf32>"
        ));
        let sumf = self.op(format!("arith.sitofp {acc} : i32 to f32"));
        match f {
            BlockFormat::Q4_0 => {
                let m8 = self.f32c(-8.0);
                let bias = self.op(format!("arith.mulf {s}, {m8} : f32"));
                (
                    self.op(format!(
                        "llvm.intr.fma({dx}, {sumf}, {bias}) : (f32, f32, f32) -> f32"
                    )),
                    None,
                )
            }
            BlockFormat::Q4_1 => (self.op(format!("arith.mulf {dx}, {sumf} : f32")), Some(s)),
            _ => (self.op(format!("arith.mulf {dx}, {sumf} : f32")), None),
        }
    }

    /// |x| (its sign bit cleared: NVVM would call libdevice for `fabs`).
    fn abs_f32(&mut self, x: &str) -> String {
        let b = self.op(format!("arith.bitcast {x} : f32 to i32"));
        let m = self.op("arith.constant 2147483647 : i32");
        let b = self.op(format!("arith.andi {b}, {m} : i32"));
        self.op(format!("arith.bitcast {b} : i32 to f32"))
    }

    /// `y` (|y| < 2^23) rounded half away from zero, as C's `roundf` and LLVM's NVPTX
    /// lowering of it: trunc(|y| + 0.5), 0 where |y| < 0.5 (where the add could round up),
    /// with y's sign; NaN gives 0 (not the conversion's undefined value).
    fn round_to_i32(&mut self, y: &str) -> String {
        let a = self.abs_f32(y);
        let half = self.f32c(0.5);
        let t = self.op(format!("arith.addf {a}, {half} : f32"));
        let t = self.op(format!("arith.fptosi {t} : f32 to i32"));
        let zero = self.op("arith.constant 0 : i32");
        let small = self.op(format!("arith.cmpf olt, {a}, {half} : f32"));
        let t = self.op(format!("arith.select {small}, {zero}, {t} : i32"));
        let zf = self.f32c(0.0);
        let neg = self.op(format!("arith.cmpf olt, {y}, {zf} : f32"));
        let n = self.op(format!("arith.subi {zero}, {t} : i32"));
        let q = self.op(format!("arith.select {neg}, {n}, {t} : i32"));
        let nan = self.op(format!("arith.cmpf uno, {y}, {y} : f32"));
        self.op(format!("arith.select {nan}, {zero}, {q} : i32"))
    }

    /// `c + Σ a_i b_i` over the four signed bytes of `a` and `b` (PTX `dp4a`).
    fn dp4a(&mut self, a: &str, b: &str, c: &str) -> String {
        self.op(format!(
            "llvm.inline_asm \"dp4a.s32.s32 $0, $1, $2, $3;\", \"=r,r,r,r\" {a}, {b}, {c} : (i32, i32, i32) -> i32"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn q8_row_halves_sit_on_other_banks() {
        for k in [32, 256, 576, 2048, 14336] {
            let l = Q8Row::of(k);
            assert_eq!(l.blocks * 32, k);
            assert!(l.hi >= 16 * l.blocks);
            assert_eq!(l.hi % 128, 64);
            assert_eq!(l.scales % 16, 0);
            assert_eq!(l.bytes, l.scales + 8 * l.blocks);
        }
    }
}
