//! Pipeline strings in MLIR's grammar:
//!
//! ```text
//! pipeline := element (',' element)*
//! element  := pass-name ('{' option (' ' option)* '}')?   // a pass with options
//!           | op-name '(' pipeline? ')'                    // a pipeline nested on ops of a kind
//! option   := key ('=' value)?                             // value: bare, "quoted" or {braced}
//! ```
//!
//! `builtin.module(func.func(canonicalize,cse),dce)` runs canonicalize and cse on every
//! function, then dce on the module. A string with no anchor is nested in `builtin.module`.

use mkc_ir::dialect::builtin;
use std::fmt;

/// One element of a parsed pipeline.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PipelineElement {
    Pass {
        name: String,
        options: Vec<(String, String)>,
        /// Byte offset in the pipeline string (for error messages).
        offset: usize,
    },
    Nested(PipelineSpec),
}

/// A pipeline anchored on an op name (`any` runs on every op).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PipelineSpec {
    pub anchor: String,
    pub elements: Vec<PipelineElement>,
}

/// A syntax error in a pipeline string, with the offending column (1-based).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PipelineError {
    pub column: usize,
    pub message: String,
}

impl fmt::Display for PipelineError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "pipeline:1:{}: error: {}", self.column, self.message)
    }
}

/// Renders a pipeline error under the pipeline text with a caret.
pub fn render_pipeline_error(text: &str, e: &PipelineError) -> String {
    format!("{e}\n{text}\n{}^\n", " ".repeat(e.column.saturating_sub(1)))
}

/// Parses a pipeline string. An empty string is an empty module pipeline.
pub fn parse_pipeline(text: &str) -> Result<PipelineSpec, PipelineError> {
    let mut p = P {
        s: text.as_bytes(),
        pos: 0,
    };
    p.ws();
    if p.pos == p.s.len() {
        return Ok(PipelineSpec {
            anchor: builtin::Module::NAME.into(),
            elements: vec![],
        });
    }
    let elements = p.list()?;
    p.ws();
    if p.pos != p.s.len() {
        return Err(p.err(format!("unexpected '{}'", p.s[p.pos] as char)));
    }
    // `builtin.module(...)` alone is the top anchor; anything else is nested into it.
    if let [PipelineElement::Nested(spec)] = &elements[..] {
        if spec.anchor == builtin::Module::NAME {
            return Ok(spec.clone());
        }
    }
    Ok(PipelineSpec {
        anchor: builtin::Module::NAME.into(),
        elements,
    })
}

struct P<'a> {
    s: &'a [u8],
    pos: usize,
}

impl P<'_> {
    fn err(&self, message: impl Into<String>) -> PipelineError {
        PipelineError {
            column: self.pos + 1,
            message: message.into(),
        }
    }

    fn ws(&mut self) {
        while self.pos < self.s.len() && self.s[self.pos].is_ascii_whitespace() {
            self.pos += 1;
        }
    }

    fn peek(&self) -> Option<u8> {
        self.s.get(self.pos).copied()
    }

    fn name(&mut self) -> Result<(String, usize), PipelineError> {
        self.ws();
        let start = self.pos;
        while let Some(c) = self.peek() {
            if c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.') {
                self.pos += 1;
            } else {
                break;
            }
        }
        if start == self.pos {
            return Err(match self.peek() {
                Some(c) => self.err(format!("expected a pass or op name, found '{}'", c as char)),
                None => self.err("expected a pass or op name, found the end"),
            });
        }
        Ok((
            String::from_utf8_lossy(&self.s[start..self.pos]).into_owned(),
            start,
        ))
    }

    fn list(&mut self) -> Result<Vec<PipelineElement>, PipelineError> {
        let mut out = Vec::new();
        loop {
            out.push(self.element()?);
            self.ws();
            if self.peek() == Some(b',') {
                self.pos += 1;
            } else {
                return Ok(out);
            }
        }
    }

    fn element(&mut self) -> Result<PipelineElement, PipelineError> {
        let (name, offset) = self.name()?;
        self.ws();
        match self.peek() {
            Some(b'(') => {
                self.pos += 1;
                self.ws();
                let elements = if self.peek() == Some(b')') {
                    vec![]
                } else {
                    self.list()?
                };
                self.ws();
                if self.peek() != Some(b')') {
                    return Err(self.err(format!("expected ')' to close '{name}('")));
                }
                self.pos += 1;
                Ok(PipelineElement::Nested(PipelineSpec {
                    anchor: name,
                    elements,
                }))
            }
            Some(b'{') => {
                self.pos += 1;
                let options = self.options()?;
                Ok(PipelineElement::Pass {
                    name,
                    options,
                    offset,
                })
            }
            _ => Ok(PipelineElement::Pass {
                name,
                options: vec![],
                offset,
            }),
        }
    }

    /// `key=value key2=value2}` (the opening brace already read).
    fn options(&mut self) -> Result<Vec<(String, String)>, PipelineError> {
        let mut out = Vec::new();
        loop {
            self.ws();
            match self.peek() {
                Some(b'}') => {
                    self.pos += 1;
                    return Ok(out);
                }
                None => return Err(self.err("expected '}' to close the options")),
                _ => {}
            }
            let (key, _) = self.name()?;
            let value = if self.peek() == Some(b'=') {
                self.pos += 1;
                self.value()?
            } else {
                String::new()
            };
            out.push((key, value));
        }
    }

    fn value(&mut self) -> Result<String, PipelineError> {
        match self.peek() {
            Some(b'"') => {
                self.pos += 1;
                let start = self.pos;
                while self.peek().is_some_and(|c| c != b'"') {
                    self.pos += 1;
                }
                if self.peek().is_none() {
                    return Err(self.err("unterminated quoted option value"));
                }
                let v = String::from_utf8_lossy(&self.s[start..self.pos]).into_owned();
                self.pos += 1;
                Ok(v)
            }
            Some(b'{') => {
                let start = self.pos + 1;
                let mut depth = 0;
                while let Some(c) = self.peek() {
                    self.pos += 1;
                    if c == b'{' {
                        depth += 1;
                    } else if c == b'}' {
                        depth -= 1;
                        if depth == 0 {
                            return Ok(
                                String::from_utf8_lossy(&self.s[start..self.pos - 1]).into_owned()
                            );
                        }
                    }
                }
                Err(self.err("unbalanced '{' in option value"))
            }
            _ => {
                let start = self.pos;
                while self
                    .peek()
                    .is_some_and(|c| !c.is_ascii_whitespace() && c != b'}')
                {
                    self.pos += 1;
                }
                Ok(String::from_utf8_lossy(&self.s[start..self.pos]).into_owned())
            }
        }
    }
}

impl fmt::Display for PipelineSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}(", self.anchor)?;
        for (i, e) in self.elements.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            match e {
                PipelineElement::Pass { name, options, .. } => {
                    f.write_str(name)?;
                    if !options.is_empty() {
                        let o: Vec<String> =
                            options.iter().map(|(k, v)| format!("{k}={v}")).collect();
                        write!(f, "{{{}}}", o.join(" "))?;
                    }
                }
                PipelineElement::Nested(s) => write!(f, "{s}")?,
            }
        }
        f.write_str(")")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_nested_pipelines_with_options() {
        let p =
            parse_pipeline("builtin.module(func.func(canonicalize{max-iterations=3}, cse),dce)")
                .unwrap();
        assert_eq!(
            p.to_string(),
            "builtin.module(func.func(canonicalize{max-iterations=3},cse),dce)"
        );
        let q = parse_pipeline("cse,dce").unwrap();
        assert_eq!(q.to_string(), "builtin.module(cse,dce)");
        assert_eq!(parse_pipeline("").unwrap().elements.len(), 0);
    }

    #[test]
    fn reports_errors_with_columns() {
        let e = parse_pipeline("builtin.module(cse").unwrap_err();
        assert_eq!(e.column, 19);
        assert!(e.message.contains("')'"), "{e}");
        let e = parse_pipeline("cse,,dce").unwrap_err();
        assert_eq!(e.column, 5);
        let e = parse_pipeline("cse{a=1").unwrap_err();
        assert!(e.message.contains("'}'"));
    }
}
