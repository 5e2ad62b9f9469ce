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

/// The command-line's numeric options, fuzzed: `compile` (to the kernel's MLIR, so every
/// kernel option is read) and `run` on the interpreter, each with a few options set to edge
/// values (0, -1, 2^31, 2^63, 1e308, NaN, "", ...) or random ones. Every invocation ends
/// with 0, or with an error it explains (1, or clap's 2): never a panic, a signal, or a hang.
/// `MKC_FUZZ_CASES` sets the count (default 24).
#[test]
fn numeric_options_never_crash_or_hang() {
    const COMPILE: [&str; 17] = [
        "--ctx",
        "--sms",
        "--bandwidth",
        "--attention-parts",
        "--last-signal-bytes",
        "--short-steps",
        "--long-steps",
        "--threads",
        "--l2-prefetch",
        "--stream-slots",
        "--slot-bytes",
        "--max-registers",
        "--matvec-rows",
        "--smem-scratch",
        "--preload",
        "--matvec-unroll",
        "--attention-lanes",
    ];
    const RUN: [&str; 6] = [
        "--max-new-tokens",
        "--ctx",
        "--temperature",
        "--top-k",
        "--top-p",
        "--seed",
    ];
    const EDGES: [&str; 36] = [
        "0",
        "1",
        "-1",
        "2",
        "3",
        "7",
        "31",
        "32",
        "33",
        "64",
        "255",
        "256",
        "1000",
        "1024",
        "4096",
        "65536",
        "2147483647",
        "2147483648",
        "4294967296",
        "9223372036854775807",
        "9223372036854775808",
        "-9223372036854775808",
        "1e308",
        "-1e308",
        "nan",
        "inf",
        "-inf",
        "0.5",
        "1.5",
        "-0.0",
        "1e-300",
        "99999999999999999999999",
        "",
        "0x10",
        " 5",
        "5 ",
    ];
    let cases: u64 = std::env::var("MKC_FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(24);
    let model = repo("tests/fixtures/llama-tiny");
    let model = model.to_str().unwrap();
    let mut state = 0x9E37_79B9_7F4A_7C15u64;
    let mut next = move || {
        // xorshift64*: a fixed sequence, so a failure is reproduced by its case number.
        state ^= state >> 12;
        state ^= state << 25;
        state ^= state >> 27;
        state.wrapping_mul(0x2545_F491_4F6C_DD1D)
    };
    for case in 0..cases {
        let run = next() % 3 == 0;
        let mut args: Vec<String> = if run {
            ["run", model, "--engine", "interp", "--prompt-ids", "1,2,3"]
                .map(String::from)
                .to_vec()
        } else {
            ["compile", model, "--emit=mlir", "-o", "/dev/null"]
                .map(String::from)
                .to_vec()
        };
        let names: &[&str] = if run { &RUN } else { &COMPILE };
        for _ in 0..1 + next() % 3 {
            let name = names[(next() % names.len() as u64) as usize];
            let value = match next() % 4 {
                0 => (next() % 100_000).to_string(),
                1 => format!("{:e}", f64::from_bits(next())),
                _ => EDGES[(next() % EDGES.len() as u64) as usize].to_string(),
            };
            args.push(format!("{name}={value}"));
        }
        if run && !args.iter().any(|a| a.starts_with("--max-new-tokens")) {
            args.push("--max-new-tokens=2".into());
        }
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_mkc"))
            .args(&args)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("mkc runs");
        let start = std::time::Instant::now();
        let status = loop {
            if let Some(s) = child.try_wait().unwrap() {
                break s;
            }
            if start.elapsed() > std::time::Duration::from_secs(120) {
                let _ = child.kill();
                panic!("case {case}: mkc {} did not end in 120 s", args.join(" "));
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        };
        let mut err = String::new();
        std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut err).unwrap();
        assert!(
            matches!(status.code(), Some(0..=2)) && !err.contains("panicked"),
            "case {case}: mkc {} ended with {status}: {err}",
            args.join(" ")
        );
        if status.code() == Some(1) {
            assert!(
                err.contains("error"),
                "case {case}: {}: {err}",
                args.join(" ")
            );
        }
    }
}
