//! The megakernel's text (MLIR, before lowering) for a fixture, where a setting decides
//! where something is read: the step's position before a task's wait, the thread's number
//! read by each code, box extents from the record or the code. (The timings these choices earned are in docs/PERF.md.)

use mkc_driver::import::ModelOptions;
use mkc_driver::{import_model, Level, PipelineOptions};
use mkc_ir::TargetSpec;
use mkc_kernel::KernelOptions;
use std::path::PathBuf;

fn kernel_mlir(fixture: &str, kernel: KernelOptions) -> String {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/fixtures")
        .join(fixture);
    let mut body = import_model(&path, &ModelOptions::default()).unwrap();
    TargetSpec::default().apply(&mut body).unwrap();
    let o = PipelineOptions {
        kernel,
        ..PipelineOptions::default()
    };
    mkc_driver::run_pipeline(&mut body, &Level::Plan.pipeline(&o)).unwrap();
    mkc_kernel::generate(&body).unwrap().mlir
}

/// The text of each case of the switch over the codes (the last runs on to the switch's
/// end), with the kind its comment names.
fn cases(mlir: &str) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::new();
    for line in mlir.lines() {
        let t = line.trim_start();
        if t.starts_with("case ") && t.ends_with('{') {
            out.push((String::new(), String::new()));
        } else if let Some(last) = out.last_mut() {
            if t.starts_with("// code ") && last.0.is_empty() {
                last.0 = t.split(": ").nth(1).unwrap_or("").to_string();
            }
            last.1.push_str(line);
            last.1.push('\n');
        }
    }
    out
}

/// In an attention code, whether a global i64 (the position: records are in shared memory)
/// is loaded before the wait's first acquire load.
fn position_before_wait(code: &str) -> bool {
    let poll = code.find("acquire").expect("attention waits");
    code[..poll].contains("!llvm.ptr<1> -> i64")
}

#[test]
fn the_position_is_loaded_before_the_wait_with_early_inputs() {
    for (early, want) in [(true, true), (false, false)] {
        let mlir = kernel_mlir(
            "llama-tiny",
            KernelOptions {
                early_inputs: early,
                ..KernelOptions::default()
            },
        );
        let attention: Vec<String> = cases(&mlir)
            .into_iter()
            .filter(|(kind, _)| kind.starts_with("attention ("))
            .map(|(_, text)| text)
            .collect();
        assert!(!attention.is_empty(), "no attention code");
        for code in &attention {
            assert_eq!(
                position_before_wait(code),
                want,
                "early_inputs = {early}: the position before the wait"
            );
        }
    }
}

#[test]
fn each_code_reads_the_thread_number_when_loaded() {
    let read = "ld.volatile.shared.u32 z";
    let loaded = kernel_mlir(
        "llama-tiny",
        KernelOptions {
            thread_number: "loaded".into(),
            ..KernelOptions::default()
        },
    );
    let codes = cases(&loaded);
    assert!(codes.len() > 3);
    for (i, (kind, text)) in codes.iter().enumerate() {
        assert_eq!(
            text.matches(read).count(),
            1,
            "code {i} ({kind}) reads the thread's number once"
        );
        assert!(
            text.contains(&format!("// tid of code {i}\"")),
            "code {i}'s read is tagged"
        );
    }
    // ... and once a pass for the queue loop's own use: one more than the codes.
    assert_eq!(loaded.matches(read).count(), codes.len() + 1);
    let mov = kernel_mlir(
        "llama-tiny",
        KernelOptions {
            thread_number: "mov".into(),
            ..KernelOptions::default()
        },
    );
    assert_eq!(mov.matches(read).count(), 0);
    assert_eq!(mov.matches("mov.u32 $0, %tid.x;").count(), 1);
}

/// The divisions and remainders in `code` by a value that is not a constant (nor a sum,
/// difference or product of constants).
fn divisions_by_variables(code: &str) -> usize {
    let mut constants: std::collections::HashSet<&str> = std::collections::HashSet::new();
    let mut count = 0;
    for line in code.lines() {
        let Some((name, rest)) = line.trim_start().split_once(" = ") else {
            continue;
        };
        let (op, args) = rest.split_once(' ').unwrap_or((rest, ""));
        let operands: Vec<&str> = args.split(" : ").next().unwrap_or("").split(", ").collect();
        let all_constant = operands.iter().all(|a| constants.contains(a));
        match op {
            "arith.constant" => {
                constants.insert(name);
            }
            "arith.muli" | "arith.addi" | "arith.subi" if all_constant => {
                constants.insert(name);
            }
            "arith.divsi" | "arith.remsi" if !constants.contains(operands[1]) => count += 1,
            _ => {}
        }
    }
    count
}

/// [`divisions_by_variables`] over the codes but attention's (which also divides by counts
/// of the step's position).
fn divisions_outside_attention(codes: &[(String, String)]) -> usize {
    codes
        .iter()
        .filter(|(kind, _)| !kind.starts_with("attention"))
        .map(|(_, t)| divisions_by_variables(t))
        .sum()
}

/// Words of the task's record a code loads (i64 loads from shared memory).
fn record_words(code: &str) -> usize {
    code.matches(": !llvm.ptr<3> -> i64").count()
}

#[test]
fn constant_extents_leave_the_codes_fewer_words_to_read_and_no_divisions_by_them() {
    let text = |constant: bool| {
        kernel_mlir(
            "llama-tiny",
            KernelOptions {
                tile_extents: if constant { "constant" } else { "record" }.into(),
                ..KernelOptions::default()
            },
        )
    };
    let (record, constant) = (cases(&text(false)), cases(&text(true)));
    assert_eq!(record.len(), constant.len());
    let mut fewer = 0;
    for ((kind, r), (_, c)) in record.iter().zip(&constant) {
        assert!(
            record_words(c) <= record_words(r),
            "{kind}: more words read"
        );
        assert!(
            divisions_by_variables(c) <= divisions_by_variables(r),
            "{kind}: more divisions by variables"
        );
        fewer += (record_words(c) < record_words(r)) as usize;
    }
    assert!(fewer > 3, "only {fewer} codes read fewer words");
    assert!(
        divisions_outside_attention(&record) > 0,
        "the record's extents divide somewhere"
    );
    assert_eq!(
        divisions_outside_attention(&constant),
        0,
        "llama-tiny's codes share their extents"
    );
}

#[test]
fn split_extents_give_ragged_tasks_codes_of_their_own_and_leave_no_divisions_by_them() {
    let kernel = |extents: &str| {
        kernel_mlir(
            "llama-tiny",
            KernelOptions {
                tile_extents: extents.into(),
                ..KernelOptions::default()
            },
        )
    };
    let (constant, split) = (cases(&kernel("constant")), cases(&kernel("split")));
    assert_eq!(divisions_outside_attention(&split), 0);
    // llama-tiny's tiles of some results are ragged (rows split unevenly over their tasks).
    assert!(split.len() > constant.len(), "nothing split");
    let words = |cs: &[(String, String)]| cs.iter().map(|(_, t)| record_words(t)).sum::<usize>();
    let per_code = |cs: &[(String, String)]| words(cs) as f64 / cs.len() as f64;
    assert!(
        per_code(&split) < per_code(&constant),
        "split codes read fewer words"
    );
    // Every kind of the constant kernel is still there.
    for (kind, _) in &constant {
        let k = kind.split(" (").next().unwrap();
        assert!(split.iter().any(|(s, _)| s.starts_with(k)), "{k} lost");
    }
}

#[test]
fn a_polling_thread_sleeps_as_long_as_the_plan_says() {
    for (ns, sleeps) in [(0u32, false), (32, true), (200, true)] {
        let mlir = kernel_mlir(
            "llama-tiny",
            KernelOptions {
                poll_sleep: ns,
                ..KernelOptions::default()
            },
        );
        for (kind, code) in cases(&mlir) {
            let wait = code.find("acquire").expect("every code waits");
            let after = &code[wait..];
            assert_eq!(
                after.contains(&format!("arith.constant {ns} : i32\n"))
                    && after.contains("nvvm.nanosleep"),
                sleeps,
                "{kind}: a sleep of {ns} ns"
            );
            assert_eq!(code.contains("nvvm.nanosleep"), sleeps, "{kind}");
        }
    }
}
