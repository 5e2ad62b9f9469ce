//! Runs every `tests/ir/*.mlir` case: checks its output against the case's `// CHECK`
//! directives, that printing is a fixed point of parsing, and that every printed module
//! parses with `mlir-opt`.

use mkc_filetests::{check_case, run_case};
use mkc_ir::verify::VerifyOptions;
use mkc_ir::{parse_and_verify, printer, Registry, SourceMap};
use std::path::{Path, PathBuf};
use std::process::Command;

fn cases() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("ir");
    let mut v: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("tests/ir exists")
        .map(|e| e.expect("readable").path())
        .filter(|p| p.extension().is_some_and(|e| e == "mlir"))
        .collect();
    v.sort();
    v
}

fn file_name(p: &Path) -> String {
    p.file_name().unwrap().to_string_lossy().into_owned()
}

/// Every case passes its checks; the failures of all of them are reported together.
#[test]
fn ir_cases_pass_their_checks() {
    let cases = cases();
    assert!(cases.len() >= 30, "expected at least 30 IR cases");
    let failures: Vec<String> = cases
        .iter()
        .filter_map(|path| {
            let text = std::fs::read_to_string(path).unwrap();
            check_case(&file_name(path), &text).err()
        })
        .collect();
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}

/// print(parse(x)) == x for every printed output.
#[test]
fn printed_ir_is_a_fixed_point_of_parsing() {
    let registry = Registry::with_all_dialects();
    let opts = VerifyOptions {
        allow_unregistered: true,
    };
    for path in cases() {
        let text = std::fs::read_to_string(&path).unwrap();
        let Ok(printed) = run_case(&file_name(&path), &text).result else {
            continue;
        };
        let mut sm = SourceMap::new();
        let body =
            parse_and_verify(&mut sm, "printed", &printed, &registry, opts).unwrap_or_else(|d| {
                panic!(
                    "{}: output does not parse back:\n{}\n{printed}",
                    path.display(),
                    mkc_ir::diag::render_all(&d, &sm)
                )
            });
        assert_eq!(
            printer::print(&body),
            printed,
            "{}: not a fixed point",
            path.display()
        );
    }
}

fn mlir_opt() -> Option<PathBuf> {
    let candidates = [
        std::env::var("MLIR_OPT").unwrap_or_default(),
        "/usr/lib/llvm-22/bin/mlir-opt".into(),
        "mlir-opt-22".into(),
        "mlir-opt".into(),
    ];
    candidates
        .into_iter()
        .filter(|c| !c.is_empty())
        .map(PathBuf::from)
        .find(|c| {
            Command::new(c)
                .arg("--version")
                .output()
                .is_ok_and(|o| o.status.success())
        })
}

/// Every printed module is valid MLIR to the real thing.
#[test]
fn printed_ir_parses_with_mlir_opt() {
    let Some(tool) = mlir_opt() else {
        eprintln!(
            "SKIPPED printed_ir_parses_with_mlir_opt: mlir-opt (mlir-22-tools) is not installed"
        );
        return;
    };
    let dir = tempdir();
    let mut checked = 0;
    for path in cases() {
        let text = std::fs::read_to_string(&path).unwrap();
        let out = run_case(&file_name(&path), &text);
        // IR dumps in the log are checked too: each is a standalone op.
        let mut texts: Vec<String> = out.result.iter().cloned().collect();
        for dump in out.log.split("// -----// IR Dump").skip(1) {
            let body = dump.split_once('\n').map_or("", |(_, rest)| rest);
            texts.push(body.trim_end().to_string());
        }
        for (i, t) in texts.iter().enumerate() {
            let f = dir.join(format!("{}.{i}.mlir", file_name(&path)));
            std::fs::write(&f, t).unwrap();
            let o = Command::new(&tool)
                .arg("--allow-unregistered-dialect")
                .arg(&f)
                .output()
                .expect("mlir-opt runs");
            assert!(
                o.status.success(),
                "{}: mlir-opt rejects the output:\n{}\n{t}",
                path.display(),
                String::from_utf8_lossy(&o.stderr)
            );
            checked += 1;
        }
    }
    assert!(checked >= 20, "only {checked} outputs checked");
}

fn tempdir() -> PathBuf {
    let d = std::env::temp_dir().join(format!("mkc-filetests-{}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d
}
