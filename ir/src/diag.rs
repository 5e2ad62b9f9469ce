//! Source locations and diagnostics in MLIR's form:
//!
//! ```text
//! model.mlir:3:10: error: use of undeclared SSA value name '%x'
//!     %0 = "tg.add"(%x, %x) : (tensor<2xf32>, tensor<2xf32>) -> tensor<2xf32>
//!                   ^
//! ```

use std::fmt;

/// Index of a source text in a [`SourceMap`].
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct FileId(pub u32);

/// A position in a source text (1-based line and column), or unknown (for IR built in code).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Default)]
pub struct Loc {
    pub file: Option<FileId>,
    pub line: u32,
    pub col: u32,
}

impl Loc {
    pub const UNKNOWN: Loc = Loc {
        file: None,
        line: 0,
        col: 0,
    };

    pub fn is_known(&self) -> bool {
        self.file.is_some()
    }
}

/// The texts that locations point into.
#[derive(Default, Debug, Clone)]
pub struct SourceMap {
    files: Vec<(String, String)>,
}

impl SourceMap {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn add(&mut self, name: impl Into<String>, text: impl Into<String>) -> FileId {
        self.files.push((name.into(), text.into()));
        FileId(self.files.len() as u32 - 1)
    }

    pub fn name(&self, id: FileId) -> &str {
        &self.files[id.0 as usize].0
    }

    pub fn text(&self, id: FileId) -> &str {
        &self.files[id.0 as usize].1
    }

    /// The 1-based line `line` of a file, without its newline.
    pub fn line(&self, id: FileId, line: u32) -> Option<&str> {
        self.text(id).lines().nth(line.checked_sub(1)? as usize)
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Severity {
    Error,
    Warning,
    Note,
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Severity::Error => "error",
            Severity::Warning => "warning",
            Severity::Note => "note",
        })
    }
}

/// One message about the input, with optional notes pointing elsewhere.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Diagnostic {
    pub severity: Severity,
    pub loc: Loc,
    pub message: String,
    pub notes: Vec<(Loc, String)>,
}

impl Diagnostic {
    pub fn error(loc: Loc, message: impl Into<String>) -> Self {
        Diagnostic {
            severity: Severity::Error,
            loc,
            message: message.into(),
            notes: Vec::new(),
        }
    }

    pub fn with_note(mut self, loc: Loc, message: impl Into<String>) -> Self {
        self.notes.push((loc, message.into()));
        self
    }

    /// Renders `file:line:col: error: message`, the source line and a caret, then the notes.
    pub fn render(&self, sources: &SourceMap) -> String {
        let mut out = String::new();
        render_one(&mut out, sources, self.loc, self.severity, &self.message);
        for (loc, msg) in &self.notes {
            render_one(&mut out, sources, *loc, Severity::Note, msg);
        }
        out
    }
}

fn render_one(out: &mut String, sources: &SourceMap, loc: Loc, sev: Severity, msg: &str) {
    use std::fmt::Write;
    match loc.file {
        Some(file) => {
            let _ = writeln!(
                out,
                "{}:{}:{}: {sev}: {msg}",
                sources.name(file),
                loc.line,
                loc.col
            );
            if let Some(line) = sources.line(file, loc.line) {
                let line = line.replace('\t', " ");
                let _ = writeln!(out, "{line}");
                // Columns count characters, so the caret lines up with non-ASCII text too.
                let pad = loc.col.saturating_sub(1) as usize;
                let _ = writeln!(out, "{}^", " ".repeat(pad));
            }
        }
        None => {
            let _ = writeln!(out, "<unknown>: {sev}: {msg}");
        }
    }
}

/// Renders a list of diagnostics, one after the other.
pub fn render_all(diags: &[Diagnostic], sources: &SourceMap) -> String {
    diags.iter().map(|d| d.render(sources)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_mlir_style_with_caret() {
        let mut sm = SourceMap::new();
        let f = sm.add("a.mlir", "line one\n  bad thing\n");
        let d = Diagnostic::error(
            Loc {
                file: Some(f),
                line: 2,
                col: 3,
            },
            "oops",
        )
        .with_note(Loc::UNKNOWN, "see here");
        assert_eq!(
            d.render(&sm),
            "a.mlir:2:3: error: oops\n  bad thing\n  ^\n<unknown>: note: see here\n"
        );
    }
}
