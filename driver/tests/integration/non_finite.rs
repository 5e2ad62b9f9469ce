//! A NaN or an infinity in what a check compares fails it, naming the place: `mkc check`
//! on a fixture whose LM head has a poisoned row, `mkc onnx-test` on a case with a poisoned
//! input or expected output. (Issue 26: with a row of the LM head set to NaN the check used
//! to report max_rel_err 0 and every argmax agreeing.)

use mkc_driver::check::{check_hf, CheckRun, Engine};
use mkc_driver::onnx_test::{run_case, Outcome};
use mkc_frontends::onnx::proto::TensorProto;
use mkc_ir::TargetSpec;
use prost::Message;
use safetensors::tensor::{Dtype, TensorView};
use safetensors::SafeTensors;
use std::path::{Path, PathBuf};

fn repo(p: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(p)
}

/// A fresh empty folder under the system's temporary one.
fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("mkc-non-finite-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// bf16 bit patterns.
const BF16_NAN: u16 = 0x7FC0;
const BF16_INF: u16 = 0x7F80;

/// A copy of the llama-tiny fixture (tied embeddings: `model.embed_tokens.weight` is the LM
/// head) whose embedding row `row` has its first `cols` elements set to `bits`.
fn poisoned_fixture(name: &str, row: usize, cols: usize, bits: u16) -> PathBuf {
    let src = repo("tests/fixtures/llama-tiny");
    let dir = temp_dir(name);
    for f in ["config.json", "reference.safetensors"] {
        std::fs::copy(src.join(f), dir.join(f)).unwrap();
    }
    let bytes = std::fs::read(src.join("model.safetensors")).unwrap();
    let st = SafeTensors::deserialize(&bytes).unwrap();
    let mut tensors: Vec<(String, Dtype, Vec<usize>, Vec<u8>)> = st
        .tensors()
        .into_iter()
        .map(|(n, t)| (n, t.dtype(), t.shape().to_vec(), t.data().to_vec()))
        .collect();
    let (_, dtype, shape, data) = tensors
        .iter_mut()
        .find(|t| t.0 == "model.embed_tokens.weight")
        .expect("the fixture has model.embed_tokens.weight");
    assert_eq!(*dtype, Dtype::BF16, "the fixture's embeddings are bf16");
    let width = shape[1];
    for c in 0..cols {
        let at = 2 * (row * width + c);
        data[at..at + 2].copy_from_slice(&bits.to_le_bytes());
    }
    let views: Vec<(String, TensorView)> = tensors
        .iter()
        .map(|(n, d, s, b)| (n.clone(), TensorView::new(*d, s.clone(), b).unwrap()))
        .collect();
    safetensors::serialize_to_file(views, None, &dir.join("model.safetensors")).unwrap();
    dir
}

/// A vocabulary row no reference token uses: only its logit is poisoned, not the input.
fn unused_token() -> usize {
    let r =
        mkc_driver::check::load_reference(&repo("tests/fixtures/llama-tiny/reference.safetensors"))
            .unwrap();
    (0..).find(|t| !r.tokens.contains(&(*t as i64))).unwrap()
}

fn interp_check(dir: &Path) -> Result<(f64, usize), String> {
    let target = TargetSpec::default();
    let run = CheckRun {
        engine: Engine::Interp,
        seed: 0,
        pipeline: "",
        target: &target,
    };
    check_hf(
        dir,
        &dir.join("reference.safetensors"),
        &run,
        &mut |_, _, _| {},
    )
    .map(|r| (r.max_rel_err(), r.argmax_agree()))
}

#[test]
fn check_fails_on_a_nan_logit_and_names_it() {
    let row = unused_token();
    let dir = poisoned_fixture("nan", row, 128, BF16_NAN);
    let e = interp_check(&dir).expect_err("a NaN logit must fail the check");
    assert!(
        e.starts_with(&format!(
            "position 0: logits against reference.safetensors: element {row} is NaN, expected "
        )),
        "{e}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn check_fails_on_an_infinite_logit_and_names_it() {
    // One infinite weight: the logit is +-inf (every element would add +inf to -inf: NaN).
    let row = unused_token();
    let dir = poisoned_fixture("inf", row, 1, BF16_INF);
    let e = interp_check(&dir).expect_err("an infinite logit must fail the check");
    let at = format!("position 0: logits against reference.safetensors: element {row} is ");
    assert!(e.starts_with(&at), "{e}");
    assert!(
        e[at.len()..].starts_with("inf") || e[at.len()..].starts_with("-inf"),
        "{e}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn the_unpoisoned_copy_still_passes() {
    // The poisoning copy itself changes nothing: zero elements poisoned.
    let dir = poisoned_fixture("clean", 0, 0, BF16_NAN);
    let (err, agree) = interp_check(&dir).unwrap();
    assert!(err <= 1e-3, "{err}");
    assert_eq!(agree, 27);
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A copy of onnx-node's test_add with `file` (in test_data_set_0) holding `value` at
/// element `i`.
fn poisoned_add_case(name: &str, file: &str, i: usize, value: f32) -> PathBuf {
    let src = repo("tests/onnx-node/test_add");
    let dir = temp_dir(name);
    std::fs::copy(src.join("model.onnx"), dir.join("model.onnx")).unwrap();
    let set = dir.join("test_data_set_0");
    std::fs::create_dir_all(&set).unwrap();
    for f in ["input_0.pb", "input_1.pb", "output_0.pb"] {
        let bytes = std::fs::read(src.join("test_data_set_0").join(f)).unwrap();
        let mut t = TensorProto::decode(&bytes[..]).unwrap();
        if f == file {
            match &mut t.raw_data {
                Some(raw) if !raw.is_empty() => {
                    raw[4 * i..4 * i + 4].copy_from_slice(&value.to_le_bytes())
                }
                _ => t.float_data[i] = value,
            }
        }
        std::fs::write(set.join(f), t.encode_to_vec()).unwrap();
    }
    dir
}

fn failure(dir: &Path) -> String {
    match run_case(dir, "") {
        Outcome::Failed(m) => m,
        Outcome::Passed => panic!("{}: passed", dir.display()),
        Outcome::Skipped(m) => panic!("{}: skipped: {m}", dir.display()),
    }
}

#[test]
fn onnx_test_fails_on_a_non_finite_output_and_names_it() {
    // Names are unique across the tests (they run in parallel in one process).
    let clean = poisoned_add_case("add-clean", "", 0, 0.0);
    if let Outcome::Failed(m) | Outcome::Skipped(m) = run_case(&clean, "") {
        panic!("the unpoisoned copy: {m}");
    }
    std::fs::remove_dir_all(&clean).unwrap();
    for (name, value) in [("nan-out", f32::NAN), ("inf-out", f32::INFINITY)] {
        // A poisoned input makes the sum non-finite where the expected value is finite.
        let dir = poisoned_add_case(name, "input_0.pb", 7, value);
        let m = failure(&dir);
        assert!(
            m.starts_with(&format!("output 0 element 7 is {value}, expected ")),
            "{name}: {m}"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

#[test]
fn onnx_test_fails_on_a_non_finite_expected_value_not_reproduced() {
    for (name, value) in [("nan-ref", f32::NAN), ("inf-ref", f32::INFINITY)] {
        let dir = poisoned_add_case(name, "output_0.pb", 5, value);
        let m = failure(&dir);
        assert!(
            m.starts_with("output 0 element 5: got ") && m.contains(&format!("expected {value}")),
            "{name}: {m}"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

#[test]
fn the_simulator_check_fails_on_a_nan_weight_and_names_it() {
    // The simulator marks undeclared reads with NaN (poison): a NaN from a weight must be
    // told apart, naming the weight and the element.
    let r =
        mkc_driver::check::load_reference(&repo("tests/fixtures/llama-tiny/reference.safetensors"))
            .unwrap();
    let row = (1..).find(|t| !r.tokens.contains(&(*t as i64))).unwrap();
    let dir = poisoned_fixture("sim-nan", row, 128, BF16_NAN);
    let target = TargetSpec::default();
    let pipeline = mkc_driver::Level::Schedule.pipeline(&mkc_driver::PipelineOptions::default());
    let run = CheckRun {
        engine: Engine::Sim,
        seed: 0,
        pipeline: &pipeline,
        target: &target,
    };
    let e = check_hf(
        &dir,
        &dir.join("reference.safetensors"),
        &run,
        &mut |_, _, _| {},
    )
    .map(|r| r.max_rel_err())
    .expect_err("a NaN weight must fail the check");
    assert!(e.starts_with("position 0: "), "{e}");
    assert!(
        e.contains(&format!(
            "(weight 'model.embed_tokens.weight') holds NaN at element {}",
            row * 128
        )),
        "{e}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

/// `run` with a temperature samples on the host from the logits: a NaN one is an error that
/// names the position and the token (greedy decoding takes the step's own argmax).
#[test]
fn sampling_from_a_nan_logit_fails_and_names_it() {
    use mkc_driver::run::{generate, RunOptions};
    use mkc_driver::sample::SamplingOptions;
    let row = unused_token();
    let dir = poisoned_fixture("run-nan", row, 128, BF16_NAN);
    let o = RunOptions {
        model: mkc_driver::ModelOptions {
            ctx: 16,
            ..Default::default()
        },
        engine: Engine::Interp,
        level: mkc_driver::Level::Tensor,
        artifact: None,
        target: TargetSpec::default(),
        banned: Vec::new(),
        eos: Vec::new(),
        sampling: SamplingOptions {
            temperature: 0.8,
            ..Default::default()
        },
    };
    let e = generate(&dir, &o, &[1, 2, 3], 2, &mut |_| {
        Ok(std::ops::ControlFlow::Continue(()))
    })
    .err()
    .expect("a NaN logit fails the run");
    assert_eq!(e, format!("position 2: logit {row} is NaN"));
    std::fs::remove_dir_all(&dir).unwrap();
}
