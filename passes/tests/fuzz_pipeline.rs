//! Fuzzes the generic passes: every file-test case, randomly edited (ir/tests/fuzz_common),
//! that parses and verifies goes through `canonicalize,cse,dce`. Properties: no pass panics,
//! the pipeline succeeds (it verifies after each pass, so its output is valid IR), and the
//! output prints to text that parses and verifies again. Budget: `MKC_FUZZ_CASES`.

#[path = "../../ir/tests/fuzz_common/mod.rs"]
mod fuzz_common;

use fuzz_common::{apply, cases, mutation, renumbering, seeds};
use mkc_ir::verify::{verify, VerifyOptions};
use mkc_ir::{parse_and_verify, printer, Registry, SourceMap};
use mkc_passes::driver::run_pipeline;
use mkc_passes::PassRegistry;
use proptest::prelude::*;

const PIPELINE: &str = "builtin.module(canonicalize,cse,dce)";

fn check(text: &str) -> Result<(), TestCaseError> {
    let registry = Registry::with_all_dialects();
    let mut passes = PassRegistry::new();
    mkc_passes::register_passes(&mut passes);
    let mut sm = SourceMap::new();
    let Ok(mut body) = parse_and_verify(&mut sm, "fuzz", text, &registry, VerifyOptions::default())
    else {
        return Ok(());
    };
    let before = printer::print(&body);
    run_pipeline(&mut body, PIPELINE, &passes).map_err(|e| {
        TestCaseError::fail(format!("{PIPELINE} failed on valid IR: {e}\n{before}"))
    })?;
    let after = printer::print(&body);
    let errors = verify(&body, &registry, VerifyOptions::default());
    if let Some(e) = errors.first() {
        return Err(TestCaseError::fail(format!(
            "output does not verify: {}\n{before}\n----\n{after}",
            e.message
        )));
    }
    parse_and_verify(
        &mut sm,
        "after",
        &after,
        &registry,
        VerifyOptions::default(),
    )
    .map_err(|d| {
        TestCaseError::fail(format!(
            "output does not parse back: {}\n{before}\n----\n{after}",
            d[0].message
        ))
    })?;
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(2000), ..ProptestConfig::default() })]

    #[test]
    fn pipeline_on_edited_cases((seed, edits) in mutation()) {
        let seeds = seeds();
        check(&apply(&seeds[seed.index(seeds.len())], &edits))?;
    }

    /// Constants, attributes and sizes replaced by edge values.
    #[test]
    fn pipeline_on_renumbered_cases((seed, edits) in renumbering()) {
        let seeds = seeds();
        check(&apply(&seeds[seed.index(seeds.len())], &edits))?;
    }
}

/// Every seed as it is: the pipeline keeps the valid ones valid.
#[test]
fn pipeline_on_every_seed() {
    for s in seeds() {
        check(s).unwrap();
    }
}
