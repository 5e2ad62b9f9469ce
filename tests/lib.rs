//! mkc-filetests: runs `.mlir` cases the way `mkc opt` would and checks their output against
//! expected lines written in the case file itself. A case's first line says how to run it:
//!
//! ```text
//! // RUN: --pass-pipeline='builtin.module(canonicalize)' --pass-statistics
//! ```
//!
//! The flags are those of `mkc opt` (timing is left out: it is not deterministic). The
//! output is the printed IR, or `// exit 1` and the diagnostics, followed by the
//! instrumentation log after a `// ---- log ----` line ([`CaseOutput::text`]). `// CHECK:`
//! directives anywhere in the file ([`filecheck`] lists them all: `CHECK-NEXT`, `CHECK-SAME`,
//! `CHECK-NOT`, `CHECK-LABEL`, `CHECK-EMPTY`, `CHECK-COUNT-N`, `{{regex}}`, `[[VAR:regex]]`)
//! are matched against that output, like LLVM's FileCheck:
//!
//! ```text
//! // CHECK-LABEL: func.func @f
//! // CHECK-NOT:   "tg.add"
//! // CHECK:       return %arg0
//! ```
//!
//! They are `//` comments, which the parser skips; an error case's diagnostics give the line
//! and column in the case file, directive lines included. Every case needs at least one
//! directive that must match.

pub mod filecheck;

use mkc_passes::driver::{opt, OptConfig};
use mkc_passes::Instrumentation;

/// Splits a RUN line into words; single or double quotes group.
fn split_words(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quote: Option<char> = None;
    let mut any = false;
    for c in s.chars() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), c) => cur.push(c),
            (None, '\'' | '"') => {
                quote = Some(c);
                any = true;
            }
            (None, c) if c.is_whitespace() => {
                if any || !cur.is_empty() {
                    out.push(std::mem::take(&mut cur));
                    any = false;
                }
            }
            (None, c) => cur.push(c),
        }
    }
    if any || !cur.is_empty() {
        out.push(cur);
    }
    out
}

/// The `mkc opt` configuration a case's RUN line asks for.
pub fn config_of(text: &str) -> Result<OptConfig, String> {
    let first = text.lines().next().unwrap_or("");
    let Some(run) = first.trim().strip_prefix("// RUN:") else {
        return Err("the first line must be `// RUN: <mkc opt flags>`".into());
    };
    let mut c = OptConfig {
        instrumentation: Instrumentation {
            verify_each: true,
            ..Default::default()
        },
        ..Default::default()
    };
    for w in split_words(run) {
        let (flag, value) = match w.split_once('=') {
            Some((f, v)) => (f.to_string(), v.to_string()),
            None => (w.clone(), String::new()),
        };
        let i = &mut c.instrumentation;
        match flag.as_str() {
            "--pass-pipeline" => c.pipeline = value,
            "--print-ir-before-all" => i.print_ir_before_all = true,
            "--print-ir-after-all" => i.print_ir_after_all = true,
            "--print-ir-before" => i.print_ir_before.push(value),
            "--print-ir-after" => i.print_ir_after.push(value),
            "--print-ir-after-change" => i.print_ir_after_change = true,
            "--pass-statistics" => i.statistics = true,
            "--no-verify" => i.verify_each = false,
            "--allow-unregistered-dialect" => c.verify.allow_unregistered = true,
            other => return Err(format!("unknown flag in RUN line: {other}")),
        }
    }
    Ok(c)
}

/// The outcome of one case.
pub struct CaseOutput {
    /// The printed IR, or the rendered diagnostics.
    pub result: Result<String, String>,
    pub log: String,
}

impl CaseOutput {
    /// The text the case's directives are checked against.
    pub fn text(&self) -> String {
        let mut s = match &self.result {
            Ok(ir) => ir.clone(),
            Err(d) => format!("// exit 1\n{d}"),
        };
        if !self.log.is_empty() {
            s.push_str("\n// ---- log ----\n");
            s.push_str(&self.log);
        }
        s
    }
}

/// Runs the case `text` named `name` (diagnostics use this name) and checks its output
/// against its directives: the number of directives, or why it failed (the case, the
/// directive's line and pattern, and the output where the search started).
pub fn check_case(name: &str, text: &str) -> Result<usize, String> {
    let directives = filecheck::directives(text).map_err(|f| f.render(name))?;
    if directives.iter().all(|d| d.kind == filecheck::Kind::Not) {
        return Err(format!(
            "{name}: no CHECK directive that must match: write what the output must hold"
        ));
    }
    let out = run_case(name, text).text();
    filecheck::check(&directives, &out).map_err(|f| f.render(name))?;
    Ok(directives.len())
}

/// Runs a case named `name` (diagnostics use this name).
pub fn run_case(name: &str, text: &str) -> CaseOutput {
    match config_of(text) {
        Err(e) => CaseOutput {
            result: Err(e),
            log: String::new(),
        },
        Ok(config) => {
            let out = opt(name, text, &config, &mkc_driver::pass_registry());
            CaseOutput {
                result: out.result,
                log: out.log,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_lines_split_like_a_shell() {
        assert_eq!(
            split_words("--pass-pipeline='a(b, c)' --x \"\""),
            vec!["--pass-pipeline=a(b, c)", "--x", ""]
        );
        let c = config_of("// RUN: --pass-pipeline='cse' --allow-unregistered-dialect\n").unwrap();
        assert_eq!(c.pipeline, "cse");
        assert!(c.verify.allow_unregistered);
        assert!(config_of("// no run line").is_err());
        assert!(config_of("// RUN: --bogus").is_err());
    }

    const CASE: &str = "// RUN: --pass-pipeline='builtin.module(canonicalize)'
func.func @f(%x: tensor<4xf32>) -> tensor<4xf32> {
  // CHECK-LABEL: func.func @f
  %one = \"tg.constant\"() {value = dense<1.0> : tensor<4xf32>} : () -> tensor<4xf32>
  // CHECK-NOT: \"tg.mul\"
  %m = \"tg.mul\"(%x, // a comment after code
    // CHECK: return %arg0
    %one) : (tensor<4xf32>, tensor<4xf32>) -> tensor<4xf32>
  return %m : tensor<4xf32>
}
";

    #[test]
    fn directive_lines_are_comments_to_the_parser() {
        // Between ops and inside one: the case parses, folds and passes its checks.
        assert_eq!(check_case("c.mlir", CASE), Ok(3));
    }

    #[test]
    fn a_case_fails_without_a_directive_that_must_match() {
        let none = "// RUN:\nfunc.func @f() {\n  return\n}\n";
        let e = check_case("c.mlir", none).unwrap_err();
        assert!(e.contains("no CHECK directive"), "{e}");
        let only_not = format!("{none}// CHECK-NOT: tg.add\n");
        assert!(check_case("c.mlir", &only_not).is_err());
    }

    #[test]
    fn a_failing_case_names_its_file_and_directive_line() {
        let wrong = CASE.replace("CHECK: return %arg0", "CHECK: return %m");
        let e = check_case("c.mlir", &wrong).unwrap_err();
        assert!(e.starts_with("c.mlir:7: CHECK: return %m\n"), "{e}");
        // The checked text of an error case is its diagnostics, by line and column.
        let bad = "// RUN:\nfunc.func @f() {\n  \"tg.nope\"() : () -> ()\n  return\n}\n\
                   // CHECK: c.mlir:3:3: error: 'tg.nope' op is not a registered operation\n";
        assert_eq!(check_case("c.mlir", bad), Ok(1));
    }
}
