//! mkc-lowering: MLIR text holding `gpu.module`s (the megakernel `mkc-kernel` generates) to
//! PTX, in process: [`gpu_module_to_ptx`] parses it, runs MLIR's NVVM pipeline and returns
//! the PTX. This is the only crate that links MLIR (through melior); nothing else in the
//! workspace may depend on it except the `mlir` feature of `mkc-driver`. It does not
//! generate kernels (`mkc-kernel`).

use melior::{
    dialect::DialectRegistry,
    ir::{
        attribute::ArrayAttribute,
        block::BlockLike,
        operation::{OperationLike, OperationRef},
        AttributeLike, Module,
    },
    pass::PassManager,
    utility::{
        parse_pass_pipeline, register_all_dialects, register_all_llvm_translations,
        register_all_passes,
    },
    Context,
};
use std::{cell::RefCell, fmt, rc::Rc};

/// A failure inside MLIR, with the diagnostics MLIR emitted (already `loc: error: msg` lines).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoweringError {
    pub stage: &'static str,
    pub diagnostics: Vec<String>,
}

impl fmt::Display for LoweringError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "MLIR {} failed", self.stage)?;
        for d in &self.diagnostics {
            write!(f, "\n{d}")?;
        }
        Ok(())
    }
}

impl std::error::Error for LoweringError {}

/// The pass pipeline from a module holding `gpu.module`s to one holding `gpu.binary`s with PTX
/// of ISA version `ptx_isa` / 10 (80: PTX 8.0).
pub fn nvvm_pipeline(chip: &str, ptx_isa: u32) -> String {
    format!(
        "builtin.module(nvvm-attach-target{{chip={chip} features=+ptx{ptx_isa} O=3}},\
         gpu.module(convert-scf-to-cf,convert-gpu-to-nvvm),gpu-to-llvm,reconcile-unrealized-casts,\
         gpu-module-to-binary{{format=isa}})"
    )
}

/// Parses MLIR text holding one or more `gpu.module`s, lowers them through NVVM and returns the
/// PTX of each (ISA version `ptx_isa` / 10), in module order. Everything runs in process;
/// errors carry MLIR's diagnostics.
pub fn gpu_module_to_ptx(
    mlir: &str,
    source_name: &str,
    chip: &str,
    ptx_isa: u32,
) -> Result<Vec<String>, LoweringError> {
    // A chip name MLIR cannot read fails inside NVVM's target verification (an abort):
    // refuse it here with a message.
    if let Err(e) = mkc_ir::target::check_chip(chip) {
        return Err(LoweringError {
            stage: "chip",
            diagnostics: vec![format!("error: --chip {e}")],
        });
    }
    let context = new_context();
    let diagnostics = Rc::new(RefCell::new(Vec::new()));
    let sink = diagnostics.clone();
    let handler = context.attach_diagnostic_handler(move |d| {
        let loc = render_location(&d.location().to_string(), source_name);
        sink.borrow_mut().push(format!("{loc}: error: {d}"));
        true
    });
    let fail = |stage| LoweringError {
        stage,
        diagnostics: diagnostics.borrow().clone(),
    };
    let result = (|| {
        let mut module = Module::parse(&context, mlir).ok_or_else(|| fail("parse"))?;
        if !module.as_operation().verify() {
            return Err(fail("verify"));
        }
        let pm = PassManager::new(&context);
        parse_pass_pipeline(
            pm.as_operation_pass_manager(),
            &nvvm_pipeline(chip, ptx_isa),
        )
        .map_err(|e| LoweringError {
            stage: "pass pipeline parse",
            diagnostics: vec![e.to_string()],
        })?;
        pm.run(&mut module).map_err(|_| fail("lowering to PTX"))?;
        let mut ptx = Vec::new();
        let mut op = module.body().first_operation();
        while let Some(o) = op {
            if o.name().as_string_ref().as_str() == Ok("gpu.binary") {
                ptx.extend(binary_objects(o)?);
            }
            op = o.next_in_block();
        }
        Ok(ptx)
    })();
    context.detach_diagnostic_handler(handler);
    result
}

/// `loc("-":1:34)` -> `NAME:1:34`; other locations are kept as MLIR prints them.
fn render_location(loc: &str, source_name: &str) -> String {
    let inner = loc
        .strip_prefix("loc(\"")
        .and_then(|s| s.strip_suffix(')'))
        .and_then(|s| s.split_once("\":"));
    match inner {
        Some((_, line_col)) if line_col.split(':').all(|p| p.parse::<u32>().is_ok()) => {
            format!("{source_name}:{line_col}")
        }
        _ => loc.to_string(),
    }
}

fn new_context() -> Context {
    let registry = DialectRegistry::new();
    register_all_dialects(&registry);
    let context = Context::new();
    context.append_dialect_registry(&registry);
    context.load_all_available_dialects();
    register_all_llvm_translations(&context);
    register_all_passes();
    context
}

/// The text of each `#gpu.object` of a `gpu.binary` op.
fn binary_objects(op: OperationRef) -> Result<Vec<String>, LoweringError> {
    let bad = |why: &str| LoweringError {
        stage: "reading gpu.binary",
        diagnostics: vec![why.to_string()],
    };
    let objects = op
        .attribute("objects")
        .map_err(|_| bad("gpu.binary has no `objects` attribute"))?;
    let objects =
        ArrayAttribute::try_from(objects).map_err(|_| bad("`objects` is not an array"))?;
    let mut out = Vec::new();
    for i in 0..objects.len() {
        let object = objects.element(i).map_err(|_| bad("bad object index"))?;
        // SAFETY: the attribute is live for the context's lifetime; we check its kind first and
        // copy the string out before the context is dropped.
        unsafe {
            let raw = object.to_raw();
            if !mlir_sys::mlirAttributeIsAGPUObjectAttr(raw) {
                return Err(bad("`objects` element is not a #gpu.object"));
            }
            let s = mlir_sys::mlirGPUObjectAttrGetObject(raw);
            let bytes = std::slice::from_raw_parts(s.data as *const u8, s.length);
            out.push(String::from_utf8_lossy(bytes).into_owned());
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const KERNEL: &str = r#"
module attributes {gpu.container_module} {
  gpu.module @kernels {
    gpu.func @scale(%buf: !llvm.ptr<1>, %factor: f32) kernel {
      %tid = gpu.thread_id x
      %bid = gpu.block_id x
      %bdim = gpu.block_dim x
      %base = arith.muli %bid, %bdim : index
      %idx = arith.addi %base, %tid : index
      %i = arith.index_cast %idx : index to i64
      %p = llvm.getelementptr %buf[%i] : (!llvm.ptr<1>, i64) -> !llvm.ptr<1>, f32
      %v = llvm.load %p : !llvm.ptr<1> -> f32
      %r = arith.mulf %v, %factor : f32
      llvm.store %r, %p : f32, !llvm.ptr<1>
      gpu.return
    }
  }
}
"#;

    #[test]
    fn tiny_gpu_module_lowers_to_ptx_in_process() {
        let ptx = gpu_module_to_ptx(KERNEL, "kernel.mlir", "sm_90a", 80).expect("lowering failed");
        assert_eq!(ptx.len(), 1);
        let ptx = &ptx[0];
        assert!(ptx.contains(".target sm_90a"), "{ptx}");
        assert!(ptx.contains(".entry scale"), "{ptx}");
        assert!(
            ptx.contains("mul.rn.f32") || ptx.contains("mul.f32"),
            "{ptx}"
        );
    }

    #[test]
    fn bad_mlir_is_an_error_with_a_location_not_an_abort() {
        let err = gpu_module_to_ptx(
            "module {\n  %0 = \"bogus\"() : () -> f32\n}",
            "bad.mlir",
            "sm_90a",
            80,
        )
        .unwrap_err();
        assert_eq!(err.stage, "parse");
        assert!(
            err.diagnostics[0].starts_with(
                "bad.mlir:2:15: error: operation being parsed with an unregistered dialect"
            ),
            "{:?}",
            err.diagnostics
        );
        assert_eq!(render_location("loc(unknown)", "x"), "loc(unknown)");
    }
}
