//! The simulator checks what a task reads against the byte ranges it declares: a task whose
//! declared reads miss part of a weight (bf16 or block-quantized) or of an activation
//! computes from poison, and the simulator names it. Its weights are shared tensors when a
//! task's reads cover its region, so this is what keeps that shortcut honest.

use crate::common;

use mkc_driver::import::model_weights;
use mkc_driver::{import_model, run_pipeline, Level, ModelOptions, PipelineOptions};
use mkc_ir::quant::BlockFormat;
use mkc_runtime::interp::i64_tensor;
use mkc_runtime::{Simulator, Tensor};
use std::path::{Path, PathBuf};

fn repo(p: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(p)
}

/// llama-tiny's scheduled step as text (quantized to `q` when given).
fn scheduled(q: Option<BlockFormat>) -> (String, ModelOptions) {
    let o = ModelOptions {
        ctx: 8,
        quantize: q,
        ..Default::default()
    };
    let path = repo("tests/fixtures/llama-tiny");
    let mut body = import_model(&path, &o).unwrap();
    mkc_ir::TargetSpec::default().apply(&mut body).unwrap();
    run_pipeline(
        &mut body,
        &Level::Schedule.pipeline(&PipelineOptions::default()),
    )
    .unwrap();
    (mkc_ir::printer::print(&body), o)
}

/// One step at position 0 on the simulator of `text`.
fn step(text: &str, o: &ModelOptions) -> Result<Vec<Tensor>, String> {
    let body = mkc_ir::parse_text("edited.mlir", text)?;
    let model = mkc_frontends::HfModel::open(&repo("tests/fixtures/llama-tiny"))?;
    let weights = model_weights(&repo("tests/fixtures/llama-tiny"), &model, o)?;
    let mut sim = Simulator::new(&body, weights.as_ref(), 0)?;
    // The KV caches: the inputs after the token and the position, zero.
    let func = mkc_ir::dialect::builtin::first_func(&body).ok_or("no function")?;
    let entry = body.entry_block(func, 0).ok_or("no body")?;
    let caches: Vec<Tensor> = body.blocks[entry]
        .args
        .iter()
        .enumerate()
        .filter(|&(i, _)| mkc_ir::dialect::builtin::weight_arg_name(&body, func, i).is_none())
        .skip(2)
        .map(|(_, &a)| {
            let t = body.ty(a).as_tensor().expect("a tensor").clone();
            Tensor::from_fn(t, |_| mkc_ir::dialect::tg::elementwise::Scalar::F(0.0))
        })
        .collect();
    let mut inputs = vec![i64_tensor(&[], vec![3]), i64_tensor(&[], vec![0])];
    inputs.extend(caches);
    sim.call(&inputs).map_err(|e| e.to_string())
}

#[test]
fn an_undeclared_weight_read_is_named() {
    for q in [None, Some(BlockFormat::Q8_0)] {
        let (text, o) = scheduled(q);
        step(&text, &o).unwrap_or_else(|e| panic!("{q:?}: the program as tiled fails: {e}"));
        let bad = common::shorten_read(&text, "lm_head", "weights", 64);
        let e = step(&bad, &o).expect_err("a task reading undeclared weight bytes must fail");
        assert!(e.contains("its reads do not declare"), "{q:?}: {e}");
    }
}

#[test]
fn an_undeclared_activation_read_is_named() {
    let (text, o) = scheduled(None);
    let bad = common::shorten_read(&text, "lm_head", "arena", 4);
    let e = step(&bad, &o).expect_err("a task reading undeclared activation bytes must fail");
    assert!(e.contains("its reads do not declare"), "{e}");
}

/// `text` with `from` replaced by `to` in the first `kind` task's line.
fn edit_task(text: &str, kind: &str, from: &str, to: &str) -> String {
    let mut done = false;
    let out: Vec<String> = text
        .lines()
        .map(|l| {
            if !done && l.contains("\"task.task\"") && l.contains(&format!("kind = \"{kind}\"")) {
                assert!(l.contains(from), "{l}");
                done = true;
                return l.replacen(from, to, 1);
            }
            l.to_string()
        })
        .collect();
    assert!(done, "no {kind} task");
    out.join("\n")
}

/// A task's group, output and tile are checked against the function when the program is
/// read (the simulator indexed with them), each error naming the task op.
#[test]
fn a_task_naming_no_group_result_or_box_of_the_function_is_an_error_when_read() {
    let (text, o) = scheduled(None);
    let line = text
        .lines()
        .find(|l| l.contains("\"task.task\"") && l.contains("kind = \"lm_head\""))
        .unwrap();
    let field = |k: &str| {
        let at = line.find(&format!("{k} = ")).unwrap() + k.len() + 3;
        let n: String = line[at..]
            .chars()
            .take_while(char::is_ascii_digit)
            .collect();
        format!("{k} = {n}")
    };
    let tile_end = {
        let at = line.find("#task.box<").unwrap();
        line[at..].split('>').next().unwrap().to_string() + ">"
    };
    for (from, to, want) in [
        (
            field("group"),
            "group = 999".to_string(),
            "'group' 999 is not a step of the function",
        ),
        (
            field("output"),
            "output = 7".to_string(),
            "'output' 7 is not a result of group",
        ),
        (
            tile_end,
            "#task.box<0:999999>".to_string(),
            "tile box [(0, 999999)] is not inside result",
        ),
    ] {
        let bad = edit_task(&text, "lm_head", &from, &to);
        let e = step(&bad, &o).expect_err(&to);
        assert!(
            e.contains(want) && e.contains("error: 'task.task' op"),
            "{to}: {e}"
        );
    }
}
