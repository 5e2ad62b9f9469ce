//! Inline PTX the NVVM conversion does not offer (or would route through libdevice, which a
//! driver-only host lacks): cache-hinted weight loads, asynchronous copies into shared
//! memory, `ex2.approx` and `sqrt.rn`, bf16 unpacking, and rope's cos/sin in f64.

use crate::gen::*;

impl Gen {
    /// 16 bytes of weights (8 bf16) at the global pointer `p`.
    pub(crate) fn weight_load16(&mut self, p: &str) -> String {
        if !self.weights_evict_first {
            return self.op(format!(
                "llvm.load {p} {{alignment = 16 : i64}} : !llvm.ptr<1> -> vector<8xbf16>"
            ));
        }
        let st = "!llvm.struct<(i32, i32, i32, i32)>";
        let r = self.op(format!(
            "llvm.inline_asm \"ld.global.L1::no_allocate.L2::cache_hint.v4.u32 {{$0, $1, $2, $3}}, [$4], $5;\", \"=r,=r,=r,=r,l,l\" {p}, %l2_evict_first : (!llvm.ptr<1>, i64) -> {st}"
        ));
        let mut v = self.op("llvm.mlir.undef : vector<4xi32>");
        for i in 0..4 {
            let e = self.op(format!("llvm.extractvalue {r}[{i}] : {st}"));
            let c = self.op(format!("arith.constant {i} : i32"));
            v = self.op(format!(
                "llvm.insertelement {e}, {v}[{c} : i32] : vector<4xi32>"
            ));
        }
        self.op(format!(
            "llvm.bitcast {v} : vector<4xi32> to vector<8xbf16>"
        ))
    }

    /// Closes this thread's asynchronous copies issued so far into a group.
    pub(crate) fn cp_async_commit(&mut self) {
        self.line(
            "llvm.inline_asm has_side_effects \"cp.async.commit_group;\", \"~{memory}\" : () -> ()",
        );
    }

    /// One asynchronous 16-byte copy from global `src` to shared `dst` (`cp.async`, no L1).
    pub(crate) fn cp_async16(&mut self, dst: &str, src: &str) {
        let dst32 = self.op(format!("llvm.ptrtoint {dst} : !llvm.ptr<3> to i32"));
        // (No L2 cache hint: with one, some kernels met CUDA_ERROR_ILLEGAL_INSTRUCTION on
        // the H100, docs/PERF.md.)
        self.line(format!(
            "llvm.inline_asm has_side_effects \"cp.async.cg.shared.global [$0], [$1], 16;\", \"r,l,~{{memory}}\" {dst32}, {src} : (i32, !llvm.ptr<1>) -> ()"
        ));
    }

    /// This thread's slot of block `b` in the preload buffer (16 bytes).
    pub(crate) fn preload_slot(&mut self, b: usize) -> String {
        let t = self.threads as i64;
        let at = self.i64c(16 * t * b as i64);
        let c16 = self.i64c(16);
        let mine = self.op(format!("arith.muli %tid64, {c16} : i64"));
        let at = self.op(format!("arith.addi {at}, {mine} : i64"));
        self.op(format!(
            "llvm.getelementptr %pre[{at}] : (!llvm.ptr<3>, i64) -> !llvm.ptr<3>, i8"
        ))
    }

    /// Waits for this thread's preload copies (`cp.async`) to land in shared memory.
    pub(crate) fn preload_wait(&mut self) {
        self.line(
            "llvm.inline_asm has_side_effects \"cp.async.wait_all;\", \"~{memory}\" : () -> ()",
        );
    }

    pub(crate) fn exp(&mut self, x: &str) -> String {
        let l2e = self.f32c(std::f64::consts::LOG2_E);
        let y = self.op(format!("arith.mulf {x}, {l2e} : f32"));
        self.ex2(&y)
    }

    /// 16 bytes of shared memory at `p` as `vector<4xi32>`, loaded where it is read
    /// (volatile: not hoisted or shared between reads, so not held in registers between).
    pub(crate) fn load_words16(&mut self, p: &str) -> String {
        self.op(format!(
            "llvm.load volatile {p} {{alignment = 16 : i64}} : !llvm.ptr<3> -> vector<4xi32>"
        ))
    }

    /// Element `j` of 8 bf16 held as `vector<4xi32>` (16 bytes as loaded), widened to f32 by
    /// a shift or a mask of its word: the words stay packed in registers (held as a
    /// `vector<8xbf16>`, PTX unpacks them into 16-bit registers, twice the registers).
    pub(crate) fn bf16_of_words(&mut self, words: &str, j: usize) -> String {
        let c = self.op(format!("arith.constant {} : i32", j / 2));
        let w = self.op(format!(
            "llvm.extractelement {words}[{c} : i32] : vector<4xi32>"
        ));
        let bits = if j.is_multiple_of(2) {
            let sh = self.op("arith.constant 16 : i32");
            self.op(format!("arith.shli {w}, {sh} : i32"))
        } else {
            let mask = self.op("arith.constant -65536 : i32");
            self.op(format!("arith.andi {w}, {mask} : i32"))
        };
        self.op(format!("arith.bitcast {bits} : i32 to f32"))
    }

    /// 2^x (`ex2.approx`: 2^-inf = 0).
    pub(crate) fn ex2(&mut self, x: &str) -> String {
        self.op(format!(
            "llvm.inline_asm \"ex2.approx.f32 $0, $1;\", \"=f,f\" {x} : (f32) -> f32"
        ))
    }

    pub(crate) fn sqrt(&mut self, x: &str) -> String {
        self.op(format!(
            "llvm.inline_asm \"sqrt.rn.f32 $0, $1;\", \"=f,f\" {x} : (f32) -> f32"
        ))
    }

    /// cos and sin of an f64 angle >= 0: reduction by multiples of pi/2 (in two parts), then
    /// Taylor series on [-pi/4, pi/4] (error below 1e-16).
    pub(crate) fn cos_sin(&mut self, x: &str) -> (String, String) {
        let two_over_pi = self.f64c(std::f64::consts::FRAC_2_PI);
        let half = self.f64c(0.5);
        let t = self.op(format!("arith.mulf {x}, {two_over_pi} : f64"));
        let t = self.op(format!("arith.addf {t}, {half} : f64"));
        let k = self.op(format!("arith.fptosi {t} : f64 to i64"));
        let kf = self.op(format!("arith.sitofp {k} : i64 to f64"));
        let p1 = self.f64c(std::f64::consts::FRAC_PI_2);
        let p2 = self.f64c(6.123_233_995_736_766e-17);
        let a = self.op(format!("arith.mulf {kf}, {p1} : f64"));
        let r = self.op(format!("arith.subf {x}, {a} : f64"));
        let b = self.op(format!("arith.mulf {kf}, {p2} : f64"));
        let r = self.op(format!("arith.subf {r}, {b} : f64"));
        let r2 = self.op(format!("arith.mulf {r}, {r} : f64"));
        // Horner on r^2: cos = sum (-1)^n r^2n/(2n)!, sin = r * sum (-1)^n r^2n/(2n+1)!.
        let series = |g: &mut Gen, odd: bool| {
            let mut acc = g.f64c(0.0);
            for n in (0..10).rev() {
                let m = if odd { 2 * n + 1 } else { 2 * n };
                let f: f64 = (1..=m).map(|i| i as f64).product();
                let c = g.f64c(if n % 2 == 0 { 1.0 } else { -1.0 } / f);
                let t = g.op(format!("arith.mulf {acc}, {r2} : f64"));
                acc = g.op(format!("arith.addf {t}, {c} : f64"));
            }
            acc
        };
        let c = series(self, false);
        let s0 = series(self, true);
        let s = self.op(format!("arith.mulf {s0}, {r} : f64"));
        // Quadrant k mod 4: (cos, sin) = (c, s), (-s, c), (-c, -s), (s, -c).
        let three = self.i64c(3);
        let q = self.op(format!("arith.andi {k}, {three} : i64"));
        let one = self.i64c(1);
        let two = self.i64c(2);
        let swap = self.op(format!("arith.andi {q}, {one} : i64"));
        let zero = self.i64c(0);
        let swap = self.op(format!("arith.cmpi ne, {swap}, {zero} : i64"));
        let cos0 = self.op(format!("arith.select {swap}, {s}, {c} : f64"));
        let sin0 = self.op(format!("arith.select {swap}, {c}, {s} : f64"));
        // cos is negated in quadrants 1 and 2, sin in 2 and 3.
        let q12a = self.op(format!("arith.cmpi eq, {q}, {one} : i64"));
        let q12b = self.op(format!("arith.cmpi eq, {q}, {two} : i64"));
        let q12 = self.op(format!("arith.ori {q12a}, {q12b} : i1"));
        let q23 = self.op(format!("arith.cmpi sge, {q}, {two} : i64"));
        let ncos = self.op(format!("arith.negf {cos0} : f64"));
        let nsin = self.op(format!("arith.negf {sin0} : f64"));
        let cos = self.op(format!("arith.select {q12}, {ncos}, {cos0} : f64"));
        let sin = self.op(format!("arith.select {q23}, {nsin}, {sin0} : f64"));
        (cos, sin)
    }
}
