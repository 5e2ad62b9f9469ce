//! `int8-activations`: products of one activation row by a Q8_0, Q4_0 or Q4_1 weight read
//! the activation rounded to 8 bits in blocks of 32 (`tg.matmul`'s `act_q8`, llama.cpp's
//! `q8_1`), so the kernel multiplies them with integer dot products (`dp4a`, four int8
//! products a lane and instruction) instead of dequantizing every weight to f32. It changes
//! the step's arithmetic, not only its speed: the interpreter and the simulator round the
//! same way, so every level still computes the same step.

use mkc_ir::attr::Attr;
use mkc_ir::diag::Diagnostic;
use mkc_ir::dialect::tg;
use mkc_ir::quant::{BlockFormat, Q8_ACT_BLOCK};
use mkc_ir::{Body, ElemType, OpId};
use mkc_passes::manager::{Pass, PassContext, PassInfo};
use mkc_passes::options::PassOptions;

mkc_passes::pass_options! {
    /// `int8-activations` takes no options.
    pub struct Int8ActivationsOptions {}
}

pub struct Int8Activations;

pub fn info() -> PassInfo {
    PassInfo {
        name: "int8-activations",
        summary: "round the activation of each product by a q8_0/q4_0/q4_1 weight to 8 bits (act_q8), for integer dot products",
        anchor: None,
        options: Int8ActivationsOptions::describe,
        statistics: &[("rounded", "products whose activation is rounded to 8 bits")],
        create: |o| {
            Int8ActivationsOptions::parse(o)?;
            Ok(Box::new(Int8Activations))
        },
    }
}

impl Pass for Int8Activations {
    fn run(&mut self, body: &mut Body, root: OpId, cx: &mut PassContext) -> Result<(), Diagnostic> {
        let mut n = 0;
        for op in body.walk(root) {
            if takes_int8(body, op) {
                body.ops[op].attrs.set("act_q8", Attr::Bool(true));
                n += 1;
            }
        }
        cx.count("rounded", n);
        Ok(())
    }
}

/// Whether `op` is a product the kernel can run on integer dot products: one row of a
/// float activation times a transposed 2-D weight of Q8_0, Q4_0 or Q4_1 blocks.
fn takes_int8(body: &Body, op: OpId) -> bool {
    let d = &body.ops[op];
    if d.name != tg::MatMul::NAME || d.operands.len() != 2 {
        return false;
    }
    let transposed = matches!(
        d.attrs.get("transpose_b"),
        Some(Attr::Bool(true)) | Some(Attr::Unit)
    );
    let (Some(a), Some(w)) = (
        body.ty(d.operands[0]).as_tensor(),
        body.ty(d.operands[1]).as_tensor(),
    ) else {
        return false;
    };
    let k = a.shape.last().copied().unwrap_or(0);
    let one_row = a.shape[..a.shape.len().saturating_sub(1)]
        .iter()
        .product::<i64>()
        == 1;
    transposed
        && one_row
        && a.elem.is_float()
        && w.shape.len() == 2
        && k > 0
        && k % Q8_ACT_BLOCK as i64 == 0
        && matches!(
            w.elem,
            ElemType::Block(BlockFormat::Q8_0 | BlockFormat::Q4_0 | BlockFormat::Q4_1)
        )
}
