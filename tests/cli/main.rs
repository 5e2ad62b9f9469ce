//! The `mkc` binary as a user sees it: exit codes, stdout/stderr, files.

mod chat;
mod frontends;
mod fusion;
mod gpu;
mod hardening;
mod onnx;
mod serve;
mod tasks;

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};

/// The fixtures made with transformers (tests/fixtures), each checked in several tests.
pub const FIXTURES: [&str; 5] = [
    "llama-tiny",
    "qwen3-tiny",
    "mistral-tiny",
    "qwen2-tiny",
    "llama3-tiny",
];

pub fn mkc(args: &[&str], stdin: Option<&str>) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_mkc"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("mkc runs");
    let mut input = child.stdin.take().unwrap();
    input.write_all(stdin.unwrap_or("").as_bytes()).unwrap();
    drop(input);
    child.wait_with_output().unwrap()
}

pub fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// The JSON object on the last line of a command's stdout (check, run, bench print one).
pub fn last_json(o: &Output) -> serde_json::Value {
    let out = text(&o.stdout);
    serde_json::from_str(out.lines().last().unwrap_or(""))
        .unwrap_or_else(|e| panic!("no JSON last line ({e}): {out}"))
}

fn temp(name: &str, contents: &[u8]) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("mkc-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let p = dir.join(name);
    std::fs::write(&p, contents).unwrap();
    p
}

const GOOD: &str = r#"func.func @f(%x: tensor<2xf32>) -> tensor<2xf32> {
  %z = "tg.constant"() {value = dense<0.0> : tensor<2xf32>} : () -> tensor<2xf32>
  %a = "tg.add"(%x, %z) : (tensor<2xf32>, tensor<2xf32>) -> tensor<2xf32>
  return %a : tensor<2xf32>
}
"#;

#[test]
fn opt_runs_a_pipeline_from_a_file_to_stdout() {
    let f = temp("good.mlir", GOOD.as_bytes());
    let o = mkc(
        &[
            "opt",
            f.to_str().unwrap(),
            "--pass-pipeline=builtin.module(canonicalize)",
        ],
        None,
    );
    assert!(o.status.success(), "{}", text(&o.stderr));
    let out = text(&o.stdout);
    assert!(out.contains("return %arg0 : tensor<2xf32>"), "{out}");
    assert!(!out.contains("tg.add"), "{out}");
    assert!(o.stderr.is_empty(), "{}", text(&o.stderr));
}

#[test]
fn opt_reads_stdin_and_writes_the_output_file() {
    let out = temp("out.mlir", b"");
    let o = mkc(&["opt", "-", "-o", out.to_str().unwrap()], Some(GOOD));
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert!(o.stdout.is_empty());
    let written = std::fs::read_to_string(out).unwrap();
    assert!(
        written.starts_with("module {\n  func.func @f("),
        "{written}"
    );
}

#[test]
fn bad_ir_exits_1_with_a_located_diagnostic() {
    let bad =
        "func.func @f(%x: tensor<2xf32>) -> tensor<2xf32> {\n  return %y : tensor<2xf32>\n}\n";
    let f = temp("bad.mlir", bad.as_bytes());
    let o = mkc(&["opt", f.to_str().unwrap()], None);
    assert_eq!(o.status.code(), Some(1));
    let err = text(&o.stderr);
    assert!(
        err.contains("bad.mlir:2:10: error: use of undeclared SSA value name '%y'\n  return %y : tensor<2xf32>\n         ^\n"),
        "{err}"
    );
    assert!(o.stdout.is_empty());
}

#[test]
fn missing_and_binary_inputs_are_clear_errors() {
    let o = mkc(&["opt", "/nonexistent/x.mlir"], None);
    assert_eq!(o.status.code(), Some(1));
    assert!(text(&o.stderr).contains("cannot read '/nonexistent/x.mlir'"));
    let f = temp("binary.mlir", &[0xff, 0xfe, 0x00, 0x41]);
    let o = mkc(&["opt", f.to_str().unwrap()], None);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        text(&o.stderr).contains("is not UTF-8 text"),
        "{}",
        text(&o.stderr)
    );
}

#[test]
fn unknown_pass_lists_the_valid_ones() {
    let o = mkc(&["opt", "--pass-pipeline=cse,frobnicate"], Some(GOOD));
    assert_eq!(o.status.code(), Some(1));
    let err = text(&o.stderr);
    assert!(
        err.contains(
            "unknown pass 'frobnicate'; valid passes: attach-target, canonicalize, cse, dce"
        ),
        "{err}"
    );
}

/// Issue 26: `--print-ir-after=` naming an unknown pass was accepted and printed nothing.
#[test]
fn print_ir_after_an_unknown_pass_is_an_error() {
    for flag in [
        "--print-ir-after=frobnicate",
        "--print-ir-before=cse,frobnicate",
    ] {
        let o = mkc(&["opt", "--pass-pipeline=cse", flag], Some(GOOD));
        assert_eq!(o.status.code(), Some(1), "{flag}");
        let err = text(&o.stderr);
        assert!(
            err.contains("unknown pass 'frobnicate'; valid passes:"),
            "{err}"
        );
        assert!(err.contains(flag.split('=').next().unwrap()), "{err}");
    }
}

#[test]
fn list_passes_shows_options_and_statistics() {
    let o = mkc(&["opt", "--list-passes"], None);
    assert!(o.status.success());
    let out = text(&o.stdout);
    for needle in [
        "canonicalize",
        "cse",
        "dce",
        "{max-iterations=<unsigned>}",
        "(default: 10)",
        "statistic folded",
    ] {
        assert!(out.contains(needle), "missing {needle}: {out}");
    }
}

#[test]
fn timing_and_statistics_go_to_stderr() {
    let o = mkc(
        &[
            "opt",
            "--pass-pipeline=builtin.module(func.func(canonicalize,cse),dce)",
            "--timing",
            "--pass-statistics",
        ],
        Some(GOOD),
    );
    assert!(o.status.success());
    let err = text(&o.stderr);
    assert!(err.contains("... Execution time report ..."), "{err}");
    assert!(err.contains("'func.func' Pipeline"), "{err}");
    assert!(
        err.contains("(simplified) 1 : operations replaced by an existing value"),
        "{err}"
    );
    assert!(text(&o.stdout).starts_with("module {"));
}

#[test]
fn help_explains_every_subcommand() {
    let o = mkc(&["--help"], None);
    assert!(o.status.success());
    let out = text(&o.stdout);
    assert!(out.contains("megakernel") && out.contains("opt"), "{out}");
    let o = mkc(&["opt", "--help"], None);
    let out = text(&o.stdout);
    for flag in [
        "--pass-pipeline",
        "--print-ir-after-all",
        "--print-ir-after-change",
        "--timing",
        "--pass-statistics",
        "--list-passes",
    ] {
        assert!(out.contains(flag), "missing {flag}");
    }
}

#[cfg(feature = "mlir")]
#[test]
fn mlir_to_ptx_lowers_the_example_kernel() {
    let example = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/scale_kernel.mlir");
    let o = mkc(&["mlir-to-ptx", example], None);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let ptx = text(&o.stdout);
    assert!(
        ptx.contains(".target sm_90a") && ptx.contains(".entry scale"),
        "{ptx}"
    );
    let o = mkc(
        &["mlir-to-ptx", "-"],
        Some("module { gpu.module @m { \"bogus\" } }"),
    );
    assert_eq!(o.status.code(), Some(1));
    assert!(text(&o.stderr).contains("error"), "{}", text(&o.stderr));
}

/// With a GPU: real device facts. Without one: a clear error, and the test says it skipped.
#[test]
fn gpu_info_reports_the_device_or_why_not() {
    let o = mkc(&["gpu-info"], None);
    if o.status.success() {
        let j: serde_json::Value = serde_json::from_str(text(&o.stdout).trim()).unwrap();
        assert!(j["sms"].as_i64().unwrap() > 0, "{j}");
        assert!(j["name"].as_str().is_some_and(|n| !n.is_empty()), "{j}");
    } else {
        let err = text(&o.stderr);
        assert!(
            err.contains("no CUDA driver")
                || err.contains("no device")
                || err.contains("without the `cuda` feature"),
            "{err}"
        );
        eprintln!(
            "SKIPPED gpu_info_reports_the_device_or_why_not: {}",
            err.trim()
        );
    }
}

/// The PTX that MLIR's NVVM pipeline makes in process loads and computes on the device.
#[test]
fn gpu_the_lowered_example_kernel_computes_on_the_device() {
    let ptx = std::env::temp_dir().join(format!("mkc-scale-{}.ptx", std::process::id()));
    let o = mkc(
        &[
            "mlir-to-ptx",
            "examples/scale_kernel.mlir",
            "-o",
            ptx.to_str().unwrap(),
        ],
        None,
    );
    assert!(o.status.success(), "{}", text(&o.stderr));
    let o = mkc(
        &["gpu-info", "--ptx", ptx.to_str().unwrap(), "--iters", "5"],
        None,
    );
    if o.status.success() {
        let j: serde_json::Value = serde_json::from_str(text(&o.stdout).trim()).unwrap();
        assert_eq!(j["ptx_kernel"]["mismatches"], 0, "{j}");
        assert_eq!(j["ptx_kernel"]["elements"], 1 << 24, "{j}");
    } else {
        let err = text(&o.stderr);
        assert!(
            err.contains("no CUDA driver") || err.contains("no device"),
            "{err}"
        );
        eprintln!(
            "SKIPPED gpu_the_lowered_example_kernel_computes_on_the_device: {}",
            err.trim()
        );
    }
}
