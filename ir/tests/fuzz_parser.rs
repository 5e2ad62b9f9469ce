//! Fuzzes the parser with proptest: random token soup and random mutations of every file-test
//! case. Properties: parsing never panics (it returns a diagnostic), and whatever parses and
//! verifies prints to a fixed point that parses and verifies again. Inputs that once broke a
//! property live in `regressions`. Budget: `MKC_FUZZ_CASES` (docs/fuzzing.md).

mod fuzz_common;

use fuzz_common::{apply, cases, mutation, renumbering, seeds};
use mkc_ir::verify::{verify, VerifyOptions};
use mkc_ir::{parser, printer, Registry, SourceMap};
use proptest::prelude::*;

fn check(text: &str) -> Result<(), TestCaseError> {
    let registry = Registry::with_all_dialects();
    let mut sm = SourceMap::new();
    let file = sm.add("fuzz", text);
    let body = match parser::parse(text, file, &registry) {
        Ok(body) => body,
        Err(d) => {
            prop_assert!(!d.message.trim().is_empty(), "an empty parse error");
            let _ = d.render(&sm);
            return Ok(());
        }
    };
    // Verification must not panic either, valid or not.
    let errors = verify(
        &body,
        &registry,
        VerifyOptions {
            allow_unregistered: true,
        },
    );
    for e in &errors {
        prop_assert!(!e.message.trim().is_empty(), "an empty verifier error");
        let _ = e.render(&sm);
    }
    if !errors.is_empty() {
        return Ok(());
    }
    let printed = printer::print(&body);
    let file2 = sm.add("printed", printed.clone());
    let again = parser::parse(&printed, file2, &registry)
        .map_err(|d| TestCaseError::fail(format!("{}\n{printed}", d.render(&sm))))?;
    prop_assert_eq!(printer::print(&again), printed.clone());
    // What verified before printing verifies after the round trip.
    let errors = verify(
        &again,
        &registry,
        VerifyOptions {
            allow_unregistered: true,
        },
    );
    if let Some(e) = errors.first() {
        return Err(TestCaseError::fail(format!(
            "printed text no longer verifies: {}\n{printed}",
            e.render(&sm)
        )));
    }
    Ok(())
}

const TOKENS: &[&str] = &[
    "module",
    "func.func",
    "return",
    "@f",
    "(",
    ")",
    "{",
    "}",
    "[",
    "]",
    "<",
    ">",
    ",",
    ":",
    "=",
    "->",
    "%0",
    "%1",
    "%x",
    "%0#1",
    "%0:2",
    "^bb0",
    "^bb1",
    "\"tg.add\"",
    "\"tg.constant\"",
    "\"demo.op\"",
    "tensor<2xf32>",
    "tensor<",
    "2x",
    "f32",
    "bf16",
    "i1",
    "index",
    "dense",
    "dense<",
    "1.0",
    "-3",
    "0x7FC00000",
    "true",
    "\"str\"",
    "\"\\",
    "#mkc.weight<\"w\">",
    "#",
    "!task.event",
    "!",
    "loc(",
    "attributes",
    "private",
    "unit",
    "value",
    "//",
    "\n",
    " ",
    "{-#",
    "::",
    "9999999999999999999999",
    "1.0e-5",
    "tensor<?x2xf32>",
    "\u{e9}",
    "\t",
];

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(1000), ..ProptestConfig::default() })]

    #[test]
    fn token_soup_never_panics(toks in prop::collection::vec(prop::sample::select(TOKENS), 0..60)) {
        check(&toks.concat())?;
    }

    #[test]
    fn arbitrary_text_never_panics(s in "\\PC{0,200}") {
        check(&s)?;
    }

    #[test]
    fn mutated_cases_never_panic(
        seed in any::<prop::sample::Index>(),
        edits in prop::collection::vec((any::<prop::sample::Index>(), 0usize..8, prop::sample::select(TOKENS)), 1..4),
    ) {
        let seeds = seeds();
        let mut text = seeds[seed.index(seeds.len())].clone();
        for (at, del, ins) in edits {
            let mut pos = at.index(text.len() + 1);
            while !text.is_char_boundary(pos) {
                pos -= 1;
            }
            let mut end = (pos + del).min(text.len());
            while !text.is_char_boundary(end) {
                end += 1;
            }
            text.replace_range(pos..end, ins);
        }
        check(&text)?;
    }

    /// Deletions, duplications, swaps, huge and negative numbers, other types and bytes.
    #[test]
    fn edited_cases_never_panic((seed, edits) in mutation()) {
        let seeds = seeds();
        check(&apply(&seeds[seed.index(seeds.len())], &edits))?;
    }

    /// Constants, attributes and sizes replaced by edge values.
    #[test]
    fn renumbered_cases_never_panic((seed, edits) in renumbering()) {
        let seeds = seeds();
        check(&apply(&seeds[seed.index(seeds.len())], &edits))?;
    }
}

/// Inputs the fuzzer found; each once panicked or broke the fixed point.
#[test]
fn regressions() {
    let cases: &[&str] = &[
        // An op name with a quote in it printed unescaped (found by mutated_cases_never_panic).
        "func.func @f() {\n  %0 = \"\\\"tg.constant\"() {value = dense<2> : tensor<2xi32>} : () -> tensor<2xi32>\n  return\n}\n",
        // Nesting deeper than the parser's limit overflowed the stack (deep_nesting_... below).
        "func.func @f() {\n \"d.o\"() {a = [[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]} : () -> ()\n return\n}",
        // `axis = 1 : i1` parsed as an integer, printed as `true` and came back a bool,
        // which the verifier refuses (found by renumbered_cases_never_panic).
        "func.func @f(%x: tensor<4xf32>, %w: tensor<4xf32>) -> tensor<4xf32> {\n  %0 = \"tg.rms_norm\"(%x, %w) {axis = 1 : i1, epsilon = 1.0e-6 : f64} : (tensor<4xf32>, tensor<4xf32>) -> tensor<4xf32>\n  return %0 : tensor<4xf32>\n}\n",
        "func.func @f() {\n  \"demo.op\"() {a = 0 : i1, b = 1 : i1, c = [1 : i1]} : () -> ()\n  return\n}\n",
        // A task on SM 2147483647: the verifier allocated a queue per SM up to it and
        // aborted out of memory (found by renumbered_cases_never_panic).
        "\"task.graph\"() ({\n  \"task.event\"() {target = 1 : i64} : () -> ()\n  \"task.task\"() {kind = \"k\", group = 0 : i64, output = 0 : i64, tile = [#task.box<0:32>], reads = [], writes = [], bytes = 0.0 : f64, flops = 0.0 : f64, waits = [], signals = [0], sm = 2147483647 : i64, slot = 0 : i64} : () -> ()\n}) : () -> ()\n",
    ];
    for c in cases {
        check(c).unwrap();
    }
}

/// Hostile nesting is an error, not a stack overflow (test threads have small stacks).
#[test]
fn deep_nesting_is_an_error_not_a_crash() {
    let registry = Registry::with_all_dialects();
    let mut sm = SourceMap::new();
    for (open, close) in [("[", "]"), ("(", ")")] {
        let text = format!(
            "func.func @f() {{\n \"d.o\"() {{a = {}1{}}} : () -> ()\n return\n}}",
            open.repeat(5000),
            close.repeat(5000)
        );
        let file = sm.add("deep", text.clone());
        assert!(parser::parse(&text, file, &registry).is_err());
    }
    let mut text = String::from("func.func @f() {\n");
    for _ in 0..3000 {
        text.push_str("\"d.o\"() ({\n");
    }
    for _ in 0..3000 {
        text.push_str("}) : () -> ()\n");
    }
    text.push_str("return\n}\n");
    let file = sm.add("deep-regions", text.clone());
    let err = parser::parse(&text, file, &registry).unwrap_err();
    assert!(err.message.contains("too deep"), "{}", err.message);
    // Just under the limit still parses.
    let mut ok = String::from("func.func @f() {\n");
    for _ in 0..45 {
        ok.push_str("\"d.o\"() ({\n");
    }
    for _ in 0..45 {
        ok.push_str("}) : () -> ()\n");
    }
    ok.push_str("return\n}\n");
    let file = sm.add("nested-ok", ok.clone());
    parser::parse(&ok, file, &registry).unwrap();
}

/// A schedule naming a huge SM is refused before its queues are allocated.
#[test]
fn huge_sm_index_is_an_error() {
    let text = "\"task.graph\"() ({\n  \"task.event\"() {target = 1 : i64} : () -> ()\n  \"task.task\"() {kind = \"k\", group = 0 : i64, output = 0 : i64, tile = [#task.box<0:32>], reads = [], writes = [], bytes = 0.0 : f64, flops = 0.0 : f64, waits = [], signals = [0], sm = 2147483647 : i64, slot = 0 : i64} : () -> ()\n}) : () -> ()\n";
    let registry = Registry::with_all_dialects();
    let mut sm = SourceMap::new();
    let file = sm.add("huge-sm", text);
    let body = parser::parse(text, file, &registry).unwrap();
    let errors = verify(&body, &registry, VerifyOptions::default());
    assert!(
        errors
            .iter()
            .any(|e| e.message.contains("'sm' 2147483647 is out of range")),
        "{:?}",
        errors.iter().map(|e| &e.message).collect::<Vec<_>>()
    );
}
