//! `split-argmax`: the argmax of a long vector (the LM head's logits) as two phases,
//! `tg.argmax_partial` (each equal part's winner and its index) and `tg.argmax_combine`
//! (the winner of the winners). One task reading a whole vocabulary's logits is bound by
//! one SM's reads from L2; the parts spread them over as many tasks as the tiler cuts.
//!
//! The result is argmax's whenever the vector holds no NaN: ties go to the first index (the
//! last with `select_last_index`) both ways. With a NaN, argmax's running comparison
//! depends on where the NaN sits, and the parts may pick differently.

use mkc_ir::attr::Attr;
use mkc_ir::diag::Diagnostic;
use mkc_ir::dialect::tg;
use mkc_ir::{Body, ElemType, OpId, OpSpec, Type};
use mkc_passes::manager::{Pass, PassContext, PassInfo};
use mkc_passes::options::PassOptions;

mkc_passes::pass_options! {
    /// Options of `split-argmax`.
    pub struct SplitArgmaxOptions {
        /// Parts the vector is cut into (0: the most, at most the target's SMs, that cut it into equal runs of a multiple of 4 elements, each at least `min-run` long; 1: no split).
        parts: i64 = 0 => "parts",
        /// Elements a part holds at least when the parts are automatic (shorter vectors stay whole).
        min_run: i64 = 256 => "min-run",
    }
}

pub struct SplitArgmax {
    pub options: SplitArgmaxOptions,
}

pub fn info() -> PassInfo {
    PassInfo {
        name: "split-argmax",
        summary: "the argmax of a long vector as its parts' winners and their combine",
        anchor: None,
        options: SplitArgmaxOptions::describe,
        statistics: &[("split", "argmax ops split into parts")],
        create: |o| {
            let options = SplitArgmaxOptions::parse(o)?;
            if options.parts < 0 || options.min_run < 1 {
                return Err(format!(
                    "parts must be 0 (automatic) or more and min-run at least 1, not {} and {}",
                    options.parts, options.min_run
                ));
            }
            Ok(Box::new(SplitArgmax { options }))
        },
    }
}

impl Pass for SplitArgmax {
    fn run(&mut self, body: &mut Body, root: OpId, cx: &mut PassContext) -> Result<(), Diagnostic> {
        let sms = mkc_ir::Target::of(body)
            .map_err(|e| Diagnostic::error(body.ops[root].loc, format!("split-argmax: {e}")))?
            .sms as i64;
        let mut n = 0;
        for op in body.walk(root) {
            if body.ops[op].name != tg::ArgMax::NAME {
                continue;
            }
            match split(body, op, &self.options, sms) {
                Ok(true) => n += 1,
                Ok(false) => {}
                Err(e) => {
                    return Err(Diagnostic::error(
                        body.ops[op].loc,
                        format!("split-argmax: {e}"),
                    ))
                }
            }
        }
        cx.count("split", n);
        Ok(())
    }
}

/// The parts of an `n`-element vector: `parts` as asked (it must divide `n`), or the most
/// at most `sms` that cut it into equal runs of a multiple of 4 elements (16-byte loads of
/// f32), each at least `min_run` long. Fewer than 2: no split.
pub fn parts_of(n: i64, o: &SplitArgmaxOptions, sms: i64) -> Result<i64, String> {
    if o.parts > 0 {
        if n % o.parts != 0 || o.parts > n {
            return Err(format!(
                "{} parts do not cut {n} elements into equal runs",
                o.parts
            ));
        }
        return Ok(o.parts);
    }
    Ok((2..=sms.min(n / o.min_run))
        .rev()
        .find(|p| n % p == 0 && (n / p) % 4 == 0)
        .unwrap_or(1))
}

/// Replaces one `tg.argmax` of a float vector (axis 0, no kept axis) by its parts and their
/// combine; false when it is not one or the vector stays whole.
fn split(body: &mut Body, op: OpId, o: &SplitArgmaxOptions, sms: i64) -> Result<bool, String> {
    let d = body.ops[op].clone();
    let Some(t) = body.ty(d.operands[0]).as_tensor().cloned() else {
        return Ok(false);
    };
    let keep = matches!(
        d.attrs.get("keepdims"),
        Some(Attr::Bool(true)) | Some(Attr::Unit)
    );
    let axis0 = d.attrs.get("axis").and_then(Attr::as_int).unwrap_or(0);
    if t.rank() != 1 || !matches!(axis0, 0 | -1) || keep || t.elem != ElemType::F32 {
        return Ok(false);
    }
    let parts = parts_of(t.shape[0], o, sms)?;
    if parts < 2 {
        return Ok(false);
    }
    let last = d.attrs.get("select_last_index").cloned();
    let mut spec = OpSpec::new(tg::ArgMaxPartial::NAME)
        .operands(d.operands.clone())
        .results(vec![Type::tensor(vec![parts, 2], ElemType::F32)])
        .attr("parts", Attr::Int(parts, ElemType::I64))
        .loc(d.loc);
    if let Some(a) = &last {
        spec = spec.attr("select_last_index", a.clone());
    }
    let partial = body.create_op(spec);
    body.insert_op_before(op, partial);
    let mut spec = OpSpec::new(tg::ArgMaxCombine::NAME)
        .operands(vec![body.ops[partial].results[0]])
        .results(vec![body.ty(d.results[0]).clone()])
        .loc(d.loc);
    if let Some(a) = last {
        spec = spec.attr("select_last_index", a);
    }
    let combine = body.create_op(spec);
    body.insert_op_before(op, combine);
    let (old, new) = (d.results[0], body.ops[combine].results[0]);
    body.replace_all_uses(old, new);
    body.erase_op(op);
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn auto() -> SplitArgmaxOptions {
        SplitArgmaxOptions::default()
    }

    #[test]
    fn automatic_parts_cut_equal_runs_of_whole_16_byte_loads() {
        // Llama-3's vocabulary: 128256 = 2^8 * 3 * 167; 128 parts would leave runs of 1002.
        assert_eq!(parts_of(128256, &auto(), 132), Ok(96));
        assert_eq!(parts_of(49152, &auto(), 132), Ok(128));
        assert_eq!(parts_of(151936, &auto(), 132), Ok(32));
        // Too short for two runs of min-run: whole.
        assert_eq!(parts_of(500, &auto(), 132), Ok(1));
        // A prime length has no equal runs.
        assert_eq!(parts_of(65521, &auto(), 132), Ok(1));
    }

    #[test]
    fn asked_parts_must_divide_the_vector() {
        let o = SplitArgmaxOptions { parts: 7, ..auto() };
        assert!(parts_of(128, &o, 132)
            .unwrap_err()
            .contains("7 parts do not cut 128 elements"));
        let o = SplitArgmaxOptions { parts: 8, ..auto() };
        assert_eq!(parts_of(128, &o, 132), Ok(8));
    }
}

#[cfg(test)]
mod simulated {
    use mkc_ir::dialect::tg::elementwise::Scalar;
    use mkc_ir::weights::{RawTensor, WeightSource};
    use mkc_ir::{Body, ElemType, TensorType};
    use mkc_runtime::{Interpreter, Simulator, Tensor};

    struct NoWeights;

    impl WeightSource for NoWeights {
        fn raw(&self, name: &str) -> Result<RawTensor<'_>, String> {
            Err(format!("no weight '{name}'"))
        }
    }

    fn step(last: bool) -> String {
        format!(
            r#"func.func @step(%x: tensor<1024xf32>) -> tensor<i64> {{
              %t = "tg.argmax"(%x) {{axis = 0 : i64, keepdims = false, select_last_index = {last}}} : (tensor<1024xf32>) -> tensor<i64>
              func.return %t : tensor<i64>
            }}"#
        )
    }

    fn compiled(text: &str, pipeline: &str) -> Body {
        let mut body = mkc_ir::parse_text("t.mlir", text).unwrap_or_else(|e| panic!("{e}"));
        let mut passes = mkc_passes::PassRegistry::new();
        mkc_passes::register_passes(&mut passes);
        mkc_fusion::register_passes(&mut passes);
        crate::register_passes(&mut passes);
        mkc_passes::driver::run_pipeline(&mut body, pipeline, &passes).unwrap();
        body
    }

    /// Few distinct values, so that the largest is tied across parts and within them.
    fn input(seed: u64, distinct: u64) -> Tensor {
        let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
        Tensor::from_fn(TensorType::new([1024], ElemType::F32), |_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            Scalar::F((s % distinct) as f64 - 3.0)
        })
    }

    #[test]
    fn the_parts_and_their_combine_pick_what_argmax_picks_ties_included() {
        for last in [false, true] {
            let text = step(last);
            let whole = compiled(&text, "builtin.module(attach-target{sms=8})");
            let split = compiled(
                &text,
                "builtin.module(attach-target{sms=8},canonicalize,split-argmax{min-run=16},fuse,cse,dce,tile{min-tile-bytes=256},schedule)",
            );
            let printed = mkc_ir::printer::print(&split);
            assert!(printed.contains("tg.argmax_partial"), "{printed}");
            assert!(!printed.contains("\"tg.argmax\""), "{printed}");
            let mut want_i = Interpreter::new(&whole, &NoWeights);
            let mut got_i = Interpreter::new(&split, &NoWeights);
            let (fw, fg) = (want_i.func("step").unwrap(), got_i.func("step").unwrap());
            for (seed, distinct) in [(1, 3), (2, 5), (3, 1000), (4, 1)] {
                let x = input(seed, distinct);
                let want = want_i.call(fw, vec![x.clone()]).unwrap();
                assert_eq!(
                    got_i.call(fg, vec![x.clone()]).unwrap(),
                    want,
                    "seed {seed}, last {last}"
                );
                let mut sim = Simulator::new(&split, &NoWeights, seed).unwrap();
                assert_eq!(sim.call(&[x]).unwrap(), want, "seed {seed}, last {last}");
            }
        }
    }
}
