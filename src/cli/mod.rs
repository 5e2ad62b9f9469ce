//! The subcommands: each parses its arguments into the driver's typed options, calls the
//! driver, and prints what it returns.

pub mod chat;
pub mod compile;
pub mod run;
pub mod serve;
pub mod tools;

use clap::builder::PossibleValue;
use mkc_driver::check::Engine;
use mkc_driver::Level;
use std::io::{Read, Write};
use std::process::ExitCode;
use std::sync::LazyLock;

/// A driver level as a command-line value (help text from [`Level::summary`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LevelArg(pub Level);

static LEVELS: LazyLock<Vec<LevelArg>> =
    LazyLock::new(|| Level::ALL.into_iter().map(LevelArg).collect());

impl clap::ValueEnum for LevelArg {
    fn value_variants<'a>() -> &'a [Self] {
        &LEVELS
    }
    fn to_possible_value(&self) -> Option<PossibleValue> {
        Some(PossibleValue::new(self.0.name()).help(self.0.summary()))
    }
}

/// An engine as a command-line value (help text from [`Engine::summary`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EngineArg(pub Engine);

static ENGINES: LazyLock<Vec<EngineArg>> =
    LazyLock::new(|| Engine::ALL.into_iter().map(EngineArg).collect());

impl clap::ValueEnum for EngineArg {
    fn value_variants<'a>() -> &'a [Self] {
        &ENGINES
    }
    fn to_possible_value(&self) -> Option<PossibleValue> {
        Some(PossibleValue::new(self.0.name()).help(self.0.summary()))
    }
}

/// The exit of a command: success, or the error printed as `mkc: error: ...`.
pub fn finish(result: Result<(), String>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("mkc: error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Reads a file, or stdin for `-`; returns (name for diagnostics, text).
pub fn read_input(path: &str) -> Result<(String, String), String> {
    if path == "-" {
        let mut s = String::new();
        std::io::stdin()
            .read_to_string(&mut s)
            .map_err(|e| format!("cannot read stdin: {e}"))?;
        Ok(("<stdin>".into(), s))
    } else {
        let bytes = std::fs::read(path).map_err(|e| format!("cannot read '{path}': {e}"))?;
        let s = String::from_utf8(bytes).map_err(|_| format!("'{path}' is not UTF-8 text"))?;
        Ok((path.to_string(), s))
    }
}

/// Writes `text` to the file, or stdout for none or `-`.
pub fn write_output(path: Option<&str>, text: &str) -> Result<(), String> {
    match path {
        None | Some("-") => std::io::stdout()
            .write_all(text.as_bytes())
            .map_err(|e| format!("cannot write stdout: {e}")),
        Some(p) => std::fs::write(p, text).map_err(|e| format!("cannot write '{p}': {e}")),
    }
}
