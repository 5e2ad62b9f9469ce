//! `mkc onnx-test`: runs ONNX backend test cases (a folder with model.onnx and
//! test_data_set_N/{input_K.pb, output_K.pb}) on the reference interpreter.

use mkc_frontends::onnx::{decode_tensor, import, proto, ImportOptions, OnnxModel};
use mkc_ir::verify::{verify, VerifyOptions};
use mkc_ir::weights::RawTensor;
use mkc_ir::{ElemType, Registry, TensorType};
use mkc_runtime::compare::{allclose, Tolerance};
use mkc_runtime::{Interpreter, Tensor};
use prost::Message;
use std::collections::HashMap;
use std::path::{Path, PathBuf};

pub enum Outcome {
    Passed,
    Failed(String),
    /// A cleanly reported unsupported element type.
    Skipped(String),
}

fn read_tensor(path: &Path) -> Result<proto::TensorProto, String> {
    let bytes = std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    proto::TensorProto::decode(&bytes[..])
        .map_err(|e| format!("{}: not a TensorProto ({e})", path.display()))
}

fn data_sets(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|d| {
            d.filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.is_dir())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

fn numbered(dir: &Path, stem: &str) -> Vec<PathBuf> {
    (0..)
        .map(|k| dir.join(format!("{stem}_{k}.pb")))
        .take_while(|p| p.is_file())
        .collect()
}

pub fn run_case(dir: &Path, pipeline: &str) -> Outcome {
    match run_case_inner(dir, pipeline) {
        Ok(()) => Outcome::Passed,
        Err(Failure::Skip(m)) => Outcome::Skipped(m),
        Err(Failure::Fail(m)) => Outcome::Failed(m),
    }
}

enum Failure {
    Skip(String),
    Fail(String),
}

impl From<String> for Failure {
    fn from(s: String) -> Self {
        Failure::Fail(s)
    }
}

impl From<mkc_frontends::onnx::OnnxError> for Failure {
    fn from(e: mkc_frontends::onnx::OnnxError) -> Self {
        if e.unsupported_dtype {
            Failure::Skip(e.message)
        } else {
            Failure::Fail(e.message)
        }
    }
}

fn run_case_inner(dir: &Path, pipeline: &str) -> Result<(), Failure> {
    let model = OnnxModel::open(&dir.join("model.onnx"))?;
    let graph = model.graph();
    let inits: std::collections::HashSet<&str> = graph
        .initializer
        .iter()
        .filter_map(|t| t.name.as_deref())
        .collect();
    let input_names: Vec<String> = graph
        .input
        .iter()
        .filter_map(|i| i.name.clone())
        .filter(|n| !inits.contains(n.as_str()))
        .collect();
    let sets = data_sets(dir);
    if sets.is_empty() {
        // Nothing to run; still report whether mkc could import the model.
        import(&model, &ImportOptions::default())?;
        return Err(Failure::Fail("no test_data_set_* folder".into()));
    }
    for set in sets {
        let inputs: Vec<proto::TensorProto> = numbered(&set, "input")
            .iter()
            .map(|p| read_tensor(p))
            .collect::<Result<_, _>>()?;
        let outputs: Vec<proto::TensorProto> = numbered(&set, "output")
            .iter()
            .map(|p| read_tensor(p))
            .collect::<Result<_, _>>()?;
        let raw_inputs: Vec<RawTensor> = inputs
            .iter()
            .map(|t| decode_tensor(t, None))
            .collect::<Result<_, _>>()?;
        let raw_outputs: Vec<RawTensor> = outputs
            .iter()
            .map(|t| decode_tensor(t, None))
            .collect::<Result<_, _>>()?;
        // Inputs bind by position (optional inputs may be absent from the data set).
        let mut known = HashMap::new();
        for (name, raw) in input_names.iter().zip(&raw_inputs) {
            known.insert(name.clone(), raw.clone());
        }
        let opts = ImportOptions {
            known_inputs: known,
        };
        let mut body = import(&model, &opts)?;
        if !pipeline.is_empty() {
            crate::run_pipeline(&mut body, pipeline).map_err(|e| format!("pipeline: {e}"))?;
        }
        let registry = Registry::with_all_dialects();
        if let Some(e) = verify(&body, &registry, VerifyOptions::default()).first() {
            return Err(Failure::Fail(format!(
                "imported IR does not verify: {}",
                e.message
            )));
        }
        let weights = mkc_frontends::onnx::OnnxWeights::new(&model);
        let mut interp = Interpreter::new(&body, &weights);
        let func = interp.func("main")?;
        let entry = body.entry_block(func, 0).expect("function body");
        let arg_types: Vec<TensorType> = body.blocks[entry]
            .args
            .iter()
            .map(|&a| body.ty(a).as_tensor().cloned().expect("tensor"))
            .collect();
        let args: Vec<Tensor> = raw_inputs
            .iter()
            .zip(&arg_types)
            .map(|(r, t)| Tensor::from_raw(r, t).map_err(|e| format!("input {e}")))
            .collect::<Result<_, _>>()?;
        let got = interp.call(func, args)?;
        if got.len() != raw_outputs.len() {
            return Err(Failure::Fail(format!(
                "{} outputs, expected {}",
                got.len(),
                raw_outputs.len()
            )));
        }
        for (k, (g, w)) in got.iter().zip(&raw_outputs).enumerate() {
            if g.ty.shape != w.shape || g.ty.elem != w.elem {
                return Err(Failure::Fail(format!(
                    "output {k}: got {}, expected tensor<{:?} x {}>",
                    g.ty, w.shape, w.elem
                )));
            }
            let want = Tensor::from_raw(w, &g.ty)?;
            compare_output(k, g, &want)?;
        }
    }
    Ok(())
}

/// Output `k` against its expected value: floats elementwise within the element type's
/// tolerance ([`allclose`]: a NaN or an infinity where the expected value is finite fails;
/// the expected value's own NaNs and infinities must be reproduced), integers exactly.
fn compare_output(k: usize, got: &Tensor, want: &Tensor) -> Result<(), String> {
    if got.ty.elem.is_float() {
        let (rtol, atol) = match got.ty.elem {
            ElemType::BF16 => (2e-2, 1e-2),
            ElemType::F16 => (1e-2, 1e-3),
            _ => (1e-3, 1e-7),
        };
        return allclose(&got.to_f64(), &want.to_f64(), Tolerance { rtol, atol })
            .map_err(|e| format!("output {k} {e} (rtol {rtol}, atol {atol})"));
    }
    match (0..got.len()).find(|&i| got.get(i).i() != want.get(i).i()) {
        Some(i) => Err(format!(
            "output {k} element {i}: got {}, expected {}",
            got.f(i),
            want.f(i)
        )),
        None => Ok(()),
    }
}

/// Runs each case; prints failures and the summary line. Returns (passed, failed, skipped).
pub fn run_all(dirs: &[PathBuf], verbose: bool, pipeline: &str) -> (usize, usize, usize) {
    let (mut passed, mut failed, mut skipped) = (0, 0, 0);
    for dir in dirs {
        let name = dir.file_name().map_or_else(
            || dir.display().to_string(),
            |n| n.to_string_lossy().into_owned(),
        );
        let outcome = std::panic::catch_unwind(|| run_case(dir, pipeline)).unwrap_or_else(|_| {
            Outcome::Failed("internal error: mkc panicked (a bug: please report)".into())
        });
        match outcome {
            Outcome::Passed => {
                passed += 1;
                if verbose {
                    println!("PASS {name}");
                }
            }
            Outcome::Failed(why) => {
                failed += 1;
                println!("FAIL {name}: {why}");
            }
            Outcome::Skipped(why) => {
                skipped += 1;
                if verbose {
                    println!("SKIP {name}: {why}");
                }
            }
        }
    }
    println!("{passed} passed, {failed} failed, {skipped} skipped");
    (passed, failed, skipped)
}
