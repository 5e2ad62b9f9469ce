//! The megakernel's text (MLIR, before lowering) for a fixture, where a setting decides
//! where something is read: the step's position before a task's wait, the thread's number
//! read by each code. (The timings these choices earned are in docs/PERF.md.)

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
