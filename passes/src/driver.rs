//! The `opt` driver: parse, verify, run a pipeline, print. Shared by the CLI and the
//! file-driven tests so both see exactly the same behaviour. The caller says which passes
//! pipelines may name (`mkc-driver` assembles every crate's).

use crate::manager::{Instrumentation, PassManager, PassRegistry};
use mkc_ir::diag::render_all;
use mkc_ir::verify::VerifyOptions;
use mkc_ir::{parse_and_verify, printer, Registry, SourceMap};

/// Settings of one `opt` run.
#[derive(Clone, Debug, Default)]
pub struct OptConfig {
    pub pipeline: String,
    pub instrumentation: Instrumentation,
    pub verify: VerifyOptions,
}

/// The result of an `opt` run: the printed module or the rendered diagnostics, plus the
/// instrumentation log (IR dumps, timing and statistics reports).
pub struct OptOutput {
    pub result: Result<String, String>,
    pub log: String,
}

/// Parses `text` (named `name` in diagnostics), verifies it, runs the pipeline and prints.
pub fn opt(name: &str, text: &str, config: &OptConfig, passes: &PassRegistry) -> OptOutput {
    let registry = Registry::with_all_dialects();
    let mut log = String::new();
    let result = (|| {
        check_instrumented_passes(&config.instrumentation, passes)?;
        let mut pm = PassManager::parse(&config.pipeline, passes)?;
        let mut sources = SourceMap::new();
        let mut body = parse_and_verify(&mut sources, name, text, &registry, config.verify)
            .map_err(|d| render_all(&d, &sources))?;
        pm.run(
            &mut body,
            &registry,
            config.verify,
            &config.instrumentation,
            &mut log,
        )
        .map_err(|d| render_all(&d, &sources))?;
        Ok(printer::print(&body))
    })();
    OptOutput { result, log }
}

/// `--print-ir-before=P` / `--print-ir-after=P` must name passes that exist: a misspelt
/// name would otherwise print nothing and look like a pass that never ran.
pub fn check_instrumented_passes(
    instr: &Instrumentation,
    passes: &PassRegistry,
) -> Result<(), String> {
    for (flag, names) in [
        ("--print-ir-before", &instr.print_ir_before),
        ("--print-ir-after", &instr.print_ir_after),
    ] {
        if let Some(bad) = names.iter().find(|n| passes.get(n).is_none()) {
            let valid: Vec<&str> = passes.iter().map(|p| p.name).collect();
            return Err(format!(
                "error: {flag}: unknown pass '{bad}'; valid passes: {}\n",
                valid.join(", ")
            ));
        }
    }
    Ok(())
}

/// Runs `pipeline` on `body`, verifying after every pass; diagnostics become one message.
pub fn run_pipeline(
    body: &mut mkc_ir::Body,
    pipeline: &str,
    passes: &PassRegistry,
) -> Result<crate::manager::RunReport, String> {
    let registry = Registry::with_all_dialects();
    let mut pm = PassManager::parse(pipeline, passes)?;
    let instr = Instrumentation {
        verify_each: true,
        ..Default::default()
    };
    let mut log = String::new();
    pm.run(body, &registry, VerifyOptions::default(), &instr, &mut log)
        .map_err(|d| {
            d.iter()
                .map(|d| d.message.clone())
                .collect::<Vec<_>>()
                .join("\n")
        })
}
