//! mkc-filetests: runs `.mlir` cases the way `mkc opt` would. A case's first line says how:
//!
//! ```text
//! // RUN: --pass-pipeline='builtin.module(canonicalize)' --pass-statistics
//! ```
//!
//! The flags are those of `mkc opt` (timing is left out: it is not deterministic). The
//! output to snapshot is the printed IR or the diagnostics, followed by the instrumentation
//! log.

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
    /// The text that gets snapshotted.
    pub fn snapshot(&self) -> String {
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
}
