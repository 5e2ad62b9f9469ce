//! Issue 26, "Hardening": every rejection is a clear error naming the input and the place,
//! with exit status 1, never a panic or an abort.

use super::{mkc, text};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

fn repo(p: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(p)
}

fn fails_with(args: &[&str], want: &str) {
    let o = mkc(args, None);
    let err = text(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{args:?}: {err}");
    assert!(!err.contains("panicked"), "{err}");
    assert!(err.contains(want), "{args:?}: {err}");
}

#[test]
fn a_model_without_weights_runs_only_with_random_weights() {
    let config = repo("tests/fixtures/llama3-tiny/config.json");
    let config = config.to_str().unwrap();
    let run = [
        "run",
        config,
        "--engine",
        "interp",
        "--prompt-ids",
        "1,2",
        "--max-new-tokens",
        "1",
    ];
    fails_with(
        &run,
        &format!("{config} has no weights: give --random-weights to run it with random ones"),
    );
    let mut random = run.to_vec();
    random.push("--random-weights");
    let o = mkc(&random, None);
    assert!(o.status.success(), "{}", text(&o.stderr));
    // check compares a checkpoint with its reference: a folder without weights is an error.
    let dir = std::env::temp_dir().join(format!("mkc-noweights-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    for f in ["config.json", "reference.safetensors"] {
        std::fs::copy(repo("tests/fixtures/llama3-tiny").join(f), dir.join(f)).unwrap();
    }
    fails_with(&["check", dir.to_str().unwrap()], "has no weights");
    // Compiling a config alone stays fine: shapes are enough.
    let o = mkc(&["compile", config, "--emit=tensor"], None);
    assert!(o.status.success(), "{}", text(&o.stderr));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn options_the_engine_ignores_are_errors() {
    let fixture = repo("tests/fixtures/llama3-tiny");
    let fixture = fixture.to_str().unwrap();
    fails_with(
        &["check", fixture, "--engine", "sim", "--artifact", "art"],
        "--artifact art: an artifact runs only with --engine gpu (not --engine sim)",
    );
    fails_with(
        &["check", fixture, "--no-sim"],
        "--no-sim only means something with --engine gpu",
    );
    fails_with(
        &[
            "run",
            fixture,
            "--prompt-ids",
            "1",
            "--engine",
            "interp",
            "--level",
            "ptx",
        ],
        "--level ptx: the interpreter runs the tensor or the fused IR",
    );
    fails_with(
        &[
            "run",
            fixture,
            "--prompt-ids",
            "1",
            "--engine",
            "interp",
            "--artifact",
            "art",
        ],
        "--artifact art: an artifact runs only with --engine gpu",
    );
}

#[test]
fn chip_names_and_sm_counts_are_checked_before_they_are_used() {
    for chip in ["", "gfx90a", "sm_"] {
        let o = mkc(&["mlir-to-ptx", &format!("--chip={chip}")], Some(""));
        let err = text(&o.stderr);
        assert_eq!(o.status.code(), Some(1), "{chip:?}: {err}");
        assert!(
            err.contains(&format!("--chip '{chip}' is not a PTX target name")),
            "{err}"
        );
    }
    let config = repo("tests/fixtures/llama3-tiny/config.json");
    let config = config.to_str().unwrap();
    fails_with(
        &["compile", config, "--emit=tasks", "--sms", "1000000"],
        "--sms must be from 1 to 4096, not 1000000",
    );
    fails_with(
        &["compile", config, "--emit=tasks", "--target-field", "chip="],
        "target field 'chip' must be a PTX target name",
    );
}

/// `mkc import MODEL | head -1` ended in a panic on the closed pipe.
#[test]
fn a_closed_pipe_ends_the_output_quietly() {
    let model = repo("tests/fixtures/configs/llama-3.1-8b.json");
    let mut child = Command::new(env!("CARGO_BIN_EXE_mkc"))
        .args(["import", model.to_str().unwrap()])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let mut first = [0u8; 64];
    stdout.read_exact(&mut first).unwrap();
    drop(stdout);
    let o = child.wait_with_output().unwrap();
    let err = text(&o.stderr);
    assert!(!err.contains("panicked") && !err.contains("error"), "{err}");
    #[cfg(unix)]
    {
        use std::os::unix::process::ExitStatusExt;
        assert!(
            o.status.code() == Some(0) || o.status.signal() == Some(13),
            "{:?}",
            o.status
        );
    }
}
