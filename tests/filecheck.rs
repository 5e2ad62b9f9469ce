//! A small FileCheck: expected lines written as `//` comments of a case file, matched in
//! order against the case's output. The semantics follow LLVM's FileCheck
//! (llvm/docs/CommandGuide/FileCheck.rst) for the directives it supports:
//!
//! - `// CHECK: p` — `p` matches somewhere after the previous match (the same line's rest
//!   included).
//! - `// CHECK-NEXT: p` — on the line right after the previous match's.
//! - `// CHECK-SAME: p` — on the previous match's line, after it.
//! - `// CHECK-EMPTY:` — the line right after the previous match's is empty.
//! - `// CHECK-NOT: p` — `p` does not occur between the previous match and the next one
//!   (or the end of the output or of the label's block).
//! - `// CHECK-COUNT-N: p` — `p` matches N times in a row, as N `CHECK: p` would.
//! - `// CHECK-LABEL: p` — matched first, in order, over the whole output; they cut it into
//!   blocks, and the directives after a label match only inside its block.
//!
//! A directive is a line that is a `//` comment (one after code on the same line is not).
//! In a pattern, `{{re}}` is a regular expression (the `regex` crate's syntax), `[[NAME:re]]`
//! captures what `re` matched and a later `[[NAME]]` must match that text again. Everything
//! else is literal, except that a run of spaces or tabs matches any run of them (FileCheck
//! without `--strict-whitespace`); leading and trailing blanks are ignored. A pattern matches
//! within one line. A comment that starts `CHECK` followed by `-` or ` :` but is no known
//! directive is an error, so that a misspelt check cannot pass unseen.
//!
//! Not supported: `CHECK-DAG`, numeric variables, other prefixes, `--strict-whitespace`.
//! Where `[[` starts no variable (`dense<[[1, 2]]>`) it is literal text; `{{\[\[}}` spells it
//! as FileCheck needs.

use regex::Regex;
use std::collections::HashMap;

/// What a directive asks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Check,
    Next,
    Same,
    Not,
    Label,
    Empty,
    Count(usize),
}

impl Kind {
    fn name(self) -> String {
        match self {
            Kind::Check => "CHECK".into(),
            Kind::Next => "CHECK-NEXT".into(),
            Kind::Same => "CHECK-SAME".into(),
            Kind::Not => "CHECK-NOT".into(),
            Kind::Label => "CHECK-LABEL".into(),
            Kind::Empty => "CHECK-EMPTY".into(),
            Kind::Count(n) => format!("CHECK-COUNT-{n}"),
        }
    }

    /// Directives that say where the previous match must be: they cannot come first.
    fn relative(self) -> bool {
        matches!(self, Kind::Next | Kind::Same | Kind::Empty)
    }
}

/// A piece of a pattern.
#[derive(Clone, Debug, PartialEq)]
enum Piece {
    Text(String),
    Regex(String),
    /// `[[NAME:re]]`
    Def(String, String),
    /// `[[NAME]]`
    Use(String),
}

/// One directive of a check file.
#[derive(Clone, Debug)]
pub struct Directive {
    pub kind: Kind,
    /// The pattern as written (trimmed).
    pub pattern: String,
    /// The directive's line in the check file (from 1).
    pub line: usize,
    pieces: Vec<Piece>,
}

/// Why a check failed, at which directive line (0: the file as a whole).
#[derive(Clone, Debug)]
pub struct Failure {
    pub line: usize,
    pub message: String,
}

impl Failure {
    /// `name:line: message`, the way a compiler names a place.
    pub fn render(&self, name: &str) -> String {
        format!("{name}:{}: {}", self.line, self.message)
    }
}

/// The directives (prefix `CHECK`) in `text`'s `//` comments, in order.
pub fn directives(text: &str) -> Result<Vec<Directive>, Failure> {
    let mut out: Vec<Directive> = Vec::new();
    // Whether a positive match (or a label) comes before: CHECK-NEXT and the like need one.
    let mut anchored = false;
    for (i, line) in text.lines().enumerate() {
        let fail = |message: String| Failure {
            line: i + 1,
            message,
        };
        let Some((kind, pattern)) = directive_of(line).map_err(fail)? else {
            continue;
        };
        if kind == Kind::Empty && !pattern.is_empty() {
            return Err(fail("CHECK-EMPTY takes no pattern".into()));
        }
        if kind != Kind::Empty && pattern.is_empty() {
            return Err(fail(format!("{}: empty pattern", kind.name())));
        }
        if kind == Kind::Count(0) {
            return Err(fail("CHECK-COUNT-0: a count must be 1 or more".into()));
        }
        if kind.relative() && !anchored {
            return Err(fail(format!(
                "{} has no previous match to follow (it cannot come first)",
                kind.name()
            )));
        }
        anchored |= kind != Kind::Not;
        let pieces = pieces_of(pattern).map_err(fail)?;
        if kind == Kind::Label
            && pieces
                .iter()
                .any(|p| matches!(p, Piece::Def(..) | Piece::Use(_)))
        {
            return Err(fail("CHECK-LABEL cannot define or use variables".into()));
        }
        out.push(Directive {
            kind,
            pattern: pattern.to_string(),
            line: i + 1,
            pieces,
        });
    }
    Ok(out)
}

/// The directive on `line`, if it is one.
fn directive_of(line: &str) -> Result<Option<(Kind, &str)>, String> {
    let Some(rest) = line.trim_start().strip_prefix("//") else {
        return Ok(None);
    };
    let Some(after) = rest.trim_start().strip_prefix("CHECK") else {
        return Ok(None);
    };
    let (name, pattern) = if let Some(p) = after.strip_prefix(':') {
        ("", p)
    } else if let Some(named) = after.strip_prefix('-') {
        let Some((name, p)) = named.split_once(':') else {
            return Err(format!("`CHECK-{named}`: a directive needs a `:`"));
        };
        (name, p)
    } else if after.trim_start().starts_with(':') {
        return Err("`CHECK :`: no blank before the colon".into());
    } else {
        // Prose that starts with the word (`// CHECKED ...`), not a directive.
        return Ok(None);
    };
    let kind = match name {
        "" => Kind::Check,
        "NEXT" => Kind::Next,
        "SAME" => Kind::Same,
        "NOT" => Kind::Not,
        "LABEL" => Kind::Label,
        "EMPTY" => Kind::Empty,
        _ => match name.strip_prefix("COUNT-").map(str::parse::<usize>) {
            Some(Ok(n)) => Kind::Count(n),
            _ => return Err(format!("unknown directive `CHECK-{name}`")),
        },
    };
    Ok(Some((kind, pattern.trim())))
}

fn is_name(s: &str) -> bool {
    let mut c = s.chars();
    c.next()
        .is_some_and(|f| f.is_ascii_alphabetic() || f == '_')
        && c.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Splits a pattern into literal text, `{{re}}` and `[[VAR]]`/`[[VAR:re]]`.
fn pieces_of(pattern: &str) -> Result<Vec<Piece>, String> {
    let mut pieces = Vec::new();
    let mut text = String::new();
    let mut rest = pattern;
    while !rest.is_empty() {
        if let Some(after) = rest.strip_prefix("{{") {
            let end = after
                .find("}}")
                .ok_or_else(|| format!("`{{{{` without `}}}}` in `{pattern}`"))?;
            pieces.push(Piece::Text(std::mem::take(&mut text)));
            pieces.push(Piece::Regex(after[..end].to_string()));
            rest = &after[end + 2..];
            continue;
        }
        if let Some(after) = rest.strip_prefix("[[") {
            // A variable only where the syntax is one: `[[1, 2]]` stays literal text.
            if let Some(end) = after.find("]]") {
                let inner = &after[..end];
                let var = match inner.split_once(':') {
                    Some((n, re)) if is_name(n) => Some(Piece::Def(n.into(), re.into())),
                    None if is_name(inner) => Some(Piece::Use(inner.into())),
                    _ => None,
                };
                if let Some(v) = var {
                    pieces.push(Piece::Text(std::mem::take(&mut text)));
                    pieces.push(v);
                    rest = &after[end + 2..];
                    continue;
                }
            }
        }
        let c = rest.chars().next().unwrap();
        text.push(c);
        rest = &rest[c.len_utf8()..];
    }
    pieces.push(Piece::Text(text));
    pieces.retain(|p| !matches!(p, Piece::Text(t) if t.is_empty()));
    Ok(pieces)
}

/// Literal text as a regex, a run of blanks matching any run of them.
fn text_regex(text: &str, out: &mut String) {
    let mut blank = false;
    for c in text.chars() {
        if c == ' ' || c == '\t' {
            if !blank {
                out.push_str("[ \t]+");
            }
            blank = true;
        } else {
            blank = false;
            out.push_str(&regex::escape(c.encode_utf8(&mut [0; 4])));
        }
    }
}

impl Directive {
    /// The pattern as one regex, with the variables captured so far put in.
    fn regex(&self, vars: &HashMap<String, String>) -> Result<Regex, String> {
        let mut re = String::new();
        for p in &self.pieces {
            match p {
                Piece::Text(t) => text_regex(t, &mut re),
                Piece::Regex(r) => re.push_str(&format!("(?:{r})")),
                Piece::Def(n, r) => re.push_str(&format!("(?P<{n}>{r})")),
                Piece::Use(n) => {
                    let v = vars
                        .get(n)
                        .ok_or_else(|| format!("[[{n}]] is used before it is defined"))?;
                    re.push_str(&regex::escape(v));
                }
            }
        }
        Regex::new(&re).map_err(|e| format!("bad regex in `{}`: {e}", self.pattern))
    }

    fn fail(&self, what: &str) -> Failure {
        Failure {
            line: self.line,
            message: format!("{}: {}\n  {what}", self.kind.name(), self.pattern),
        }
    }
}

/// A place in the output: line (from 0) and byte column.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Pos {
    line: usize,
    col: usize,
}

/// Where a pattern matched.
#[derive(Clone, Copy, Debug)]
struct Match {
    start: Pos,
    end: Pos,
}

/// The output as lines, and the captures so far.
struct Input<'a> {
    lines: Vec<&'a str>,
    vars: HashMap<String, String>,
}

impl Input<'_> {
    fn end(&self) -> Pos {
        Pos {
            line: self.lines.len(),
            col: 0,
        }
    }

    /// The first match of `re` in [from, until), within a line.
    fn find(&self, re: &Regex, from: Pos, until: Pos) -> Option<(Match, regex::Captures<'_>)> {
        for l in from.line..self.lines.len().min(until.line + 1) {
            let mut hay = self.lines[l];
            if l == until.line {
                hay = &hay[..until.col.min(hay.len())];
            }
            let col = if l == from.line { from.col } else { 0 };
            if col > hay.len() {
                continue;
            }
            if let Some(c) = re.captures_at(hay, col) {
                let m = c.get(0).unwrap();
                let at = |col| Pos { line: l, col };
                return Some((
                    Match {
                        start: at(m.start()),
                        end: at(m.end()),
                    },
                    c,
                ));
            }
        }
        None
    }

    /// A few lines of the output from `from`, numbered from 1, `mark` flagged.
    fn context(&self, from: Pos, mark: Option<usize>) -> String {
        let mut s = String::new();
        if self.lines.is_empty() {
            return "  (the output is empty)\n".into();
        }
        if from.line >= self.lines.len() {
            return "  (the search started at the end of the output)\n".into();
        }
        let column = if from.col > 0 {
            format!(", column {}", from.col + 1)
        } else {
            String::new()
        };
        s.push_str(&format!(
            "  output from line {}{column} (where the search started):\n",
            from.line + 1
        ));
        let last = (from.line + 6).min(self.lines.len());
        for l in from.line..last {
            let flag = if Some(l) == mark { "!" } else { " " };
            s.push_str(&format!("  {flag}{:>5} | {}\n", l + 1, self.lines[l]));
        }
        if let Some(m) = mark.filter(|&m| m >= last) {
            s.push_str(&format!(
                "         ...\n  !{:>5} | {}\n",
                m + 1,
                self.lines[m]
            ));
        }
        s
    }
}

/// The block a group of directives is matched in: after its label (if any).
struct Block<'d> {
    label: Option<Match>,
    end: Pos,
    directives: &'d [Directive],
}

/// Checks `output` against `directives`; the first failure.
pub fn check(directives: &[Directive], output: &str) -> Result<(), Failure> {
    let mut input = Input {
        lines: output.lines().collect(),
        vars: HashMap::new(),
    };
    for block in blocks(directives, &input)? {
        check_block(&block, &mut input)?;
    }
    Ok(())
}

/// Matches the labels in order over the whole output, and cuts the directives at them.
fn blocks<'d>(directives: &'d [Directive], input: &Input) -> Result<Vec<Block<'d>>, Failure> {
    let mut cuts = vec![0];
    cuts.extend(
        directives
            .iter()
            .enumerate()
            .filter(|(_, d)| d.kind == Kind::Label)
            .map(|(i, _)| i),
    );
    cuts.dedup();
    cuts.push(directives.len());
    let mut labels: Vec<Option<Match>> = Vec::new();
    let mut from = Pos { line: 0, col: 0 };
    for w in cuts.windows(2) {
        let d = &directives[w[0]];
        if d.kind != Kind::Label {
            labels.push(None);
            continue;
        }
        let re = d.regex(&input.vars).map_err(|e| d.fail(&e))?;
        let Some((m, _)) = input.find(&re, from, input.end()) else {
            let what = format!("label not found\n{}", input.context(from, None));
            return Err(d.fail(&what));
        };
        labels.push(Some(m));
        from = m.end;
    }
    let mut out = Vec::new();
    for (i, w) in cuts.windows(2).enumerate() {
        let end = labels[i + 1..]
            .iter()
            .flatten()
            .next()
            .map_or(input.end(), |m| m.start);
        let skip = usize::from(labels[i].is_some());
        out.push(Block {
            label: labels[i],
            end,
            directives: &directives[w[0] + skip..w[1]],
        });
    }
    Ok(out)
}

/// Checks the directives of one block, in order.
fn check_block(block: &Block, input: &mut Input) -> Result<(), Failure> {
    let mut prev = block.label;
    let mut cursor = prev.map_or(Pos { line: 0, col: 0 }, |m| m.end);
    let mut nots: Vec<&Directive> = Vec::new();
    for d in block.directives {
        let m = match d.kind {
            Kind::Not => {
                nots.push(d);
                continue;
            }
            Kind::Empty => {
                let prev = prev.expect("checked when parsed");
                let l = prev.end.line + 1;
                if input.lines.get(l).is_none_or(|s| !s.trim().is_empty()) {
                    let what = format!(
                        "output line {} is not empty\n{}",
                        l + 1,
                        input.context(prev.end, Some(l))
                    );
                    return Err(d.fail(&what));
                }
                let at = Pos { line: l, col: 0 };
                Match { start: at, end: at }
            }
            _ => match_one(d, prev, cursor, block.end, input)?,
        };
        check_nots(&nots, cursor, m.start, input)?;
        nots.clear();
        let mut last = m;
        if let Kind::Count(n) = d.kind {
            for _ in 1..n {
                last = match_one(d, Some(last), last.end, block.end, input)?;
            }
        }
        prev = Some(last);
        cursor = last.end;
    }
    check_nots(&nots, cursor, block.end, input)
}

/// Matches a positive directive from `cursor`, where its kind says it must be.
fn match_one(
    d: &Directive,
    prev: Option<Match>,
    cursor: Pos,
    end: Pos,
    input: &mut Input,
) -> Result<Match, Failure> {
    let re = d.regex(&input.vars).map_err(|e| d.fail(&e))?;
    let found = input.find(&re, cursor, end).map(|(m, caps)| {
        let vars: Vec<(String, String)> = re
            .capture_names()
            .flatten()
            .filter_map(|n| Some((n.to_string(), caps.name(n)?.as_str().to_string())))
            .collect();
        (m, vars)
    });
    let Some((m, vars)) = found else {
        let what = format!("expected text not found\n{}", input.context(cursor, None));
        return Err(d.fail(&what));
    };
    let prev_line = prev.map(|p| p.end.line);
    let misplaced = match d.kind {
        Kind::Next if Some(m.start.line) == prev_line => {
            Some("on the same line as the previous match")
        }
        Kind::Next if Some(m.start.line) != prev_line.map(|l| l + 1) => {
            Some("not on the line after the previous match")
        }
        Kind::Same if Some(m.start.line) != prev_line => {
            Some("not on the same line as the previous match")
        }
        _ => None,
    };
    if let Some(why) = misplaced {
        let what = format!(
            "found on output line {}, {why} (line {})\n{}",
            m.start.line + 1,
            prev_line.map_or(0, |l| l + 1),
            input.context(cursor, Some(m.start.line))
        );
        return Err(d.fail(&what));
    }
    input.vars.extend(vars);
    Ok(m)
}

/// No `CHECK-NOT` pattern of `nots` occurs in [from, until).
fn check_nots(nots: &[&Directive], from: Pos, until: Pos, input: &Input) -> Result<(), Failure> {
    for d in nots {
        let re = d.regex(&input.vars).map_err(|e| d.fail(&e))?;
        if let Some((m, _)) = input.find(&re, from, until) {
            let what = format!(
                "excluded text found on output line {}\n{}",
                m.start.line + 1,
                input.context(from, Some(m.start.line))
            );
            return Err(d.fail(&what));
        }
    }
    Ok(())
}

/// Checks `output` against the directives of `checks`; the number of directives, or the
/// failure rendered with `name` (the check file's name).
pub fn check_text(name: &str, checks: &str, output: &str) -> Result<usize, String> {
    let ds = directives(checks).map_err(|f| f.render(name))?;
    check(&ds, output).map_err(|f| f.render(name))?;
    Ok(ds.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    const OUT: &str = "module {
  func.func @f(%arg0: tensor<4xf32>) -> tensor<4xf32> {
    %0 = \"tg.neg\"(%arg0) : (tensor<4xf32>) -> tensor<4xf32>
    %1 = \"tg.add\"(%0,   %arg0) : (tensor<4xf32>, tensor<4xf32>) -> tensor<4xf32>
    return %1 : tensor<4xf32>
  }

  func.func @g() {
    %0 = \"tg.mul\"(%arg0, %arg0) : (tensor<4xf32>, tensor<4xf32>) -> tensor<4xf32>
    return
  }
}
";

    /// Checks `checks` (directive lines) against OUT.
    fn run(checks: &str) -> Result<usize, String> {
        check_text("case.mlir", checks, OUT)
    }

    /// `checks` must fail, at directive line `line`, saying `why`.
    fn fails(checks: &str, line: usize, why: &str) {
        let e = run(checks).expect_err(checks);
        assert!(e.starts_with(&format!("case.mlir:{line}: ")), "{e}");
        assert!(e.contains(why), "{why} not in:\n{e}");
    }

    #[test]
    fn directives_pass_where_the_output_has_them() {
        let ok = [
            "// CHECK: func.func @f",
            "// CHECK: @f\n// CHECK-NEXT: tg.neg\n// CHECK-NEXT: tg.add\n// CHECK-NEXT: return",
            "// CHECK: tg.add\n// CHECK-SAME: tensor<4xf32>, tensor<4xf32>",
            "// CHECK: @f\n// CHECK-NOT: tg.mul\n// CHECK: @g\n// CHECK: tg.mul",
            "// CHECK: return %1\n// CHECK-NEXT: }\n// CHECK-EMPTY:\n// CHECK-NEXT: @g",
            "// CHECK-COUNT-2: return",
            "// CHECK-LABEL: @f\n// CHECK-NOT: tg.mul\n// CHECK-LABEL: @g\n// CHECK: tg.mul",
            // Blank runs match any run, either way round.
            "// CHECK: \"tg.add\"(%0, %arg0)",
            "// CHECK: %1   =  \"tg.add\"",
            "// CHECK: %{{[0-9]+}} = \"tg.{{add|sub}}\"",
            "// CHECK: %[[N:.*]] = \"tg.neg\"\n// CHECK: \"tg.add\"(%[[N]],",
            // Literal `[[`: no variable syntax.
            "// CHECK: {{^}}module {{[{]}}",
            // Not a directive: prose.
            "// CHECK: module\n// CHECKED by hand: nothing to see",
            // After the last positive match, to the end.
            "// CHECK: @g\n// CHECK-NOT: tg.neg",
        ];
        for c in ok {
            assert!(run(c).is_ok(), "{c}: {}", run(c).unwrap_err());
        }
    }

    #[test]
    fn a_missing_line_fails() {
        fails(
            "// CHECK: @f\n// CHECK: tg.sub",
            2,
            "expected text not found",
        );
        // The message shows where the search started.
        let e = run("// CHECK: @f\n// CHECK: tg.sub").unwrap_err();
        assert!(e.contains("output from line 2"), "{e}");
        assert!(e.contains("    2 |   func.func @f"), "{e}");
    }

    #[test]
    fn order_matters() {
        fails("// CHECK: tg.add\n// CHECK: tg.neg", 2, "not found");
        // A match starts after the previous one ends, on its line too.
        fails("// CHECK: tg.add\n// CHECK: tg.add", 2, "not found");
        let e = run("// CHECK: tg.neg\n// CHECK: tg.neg").unwrap_err();
        assert!(e.contains("output from line 3, column 17"), "{e}");
    }

    #[test]
    fn check_not_fails_where_the_text_is() {
        fails(
            "// CHECK: @f\n// CHECK-NOT: tg.add\n// CHECK: return",
            2,
            "excluded text found on output line 4",
        );
        fails("// CHECK: @f\n// CHECK-NOT: tg.mul", 2, "output line 9");
        // Before the first match too.
        fails("// CHECK-NOT: module\n// CHECK: @f", 1, "output line 1");
    }

    #[test]
    fn check_next_fails_with_a_gap_or_on_the_same_line() {
        fails(
            "// CHECK: @f\n// CHECK-NEXT: tg.add",
            2,
            "found on output line 4, not on the line after the previous match (line 2)",
        );
        fails(
            "// CHECK: tg.add\n// CHECK-NEXT: tensor<4xf32>",
            2,
            "on the same line as the previous match",
        );
    }

    #[test]
    fn check_same_fails_on_another_line() {
        fails(
            "// CHECK: tg.neg\n// CHECK-SAME: tg.add",
            2,
            "found on output line 4, not on the same line",
        );
        // Only after the previous match.
        fails("// CHECK: tg.add\n// CHECK-SAME: %1 =", 2, "not found");
    }

    #[test]
    fn check_empty_fails_on_a_line_with_text() {
        fails(
            "// CHECK: @f\n// CHECK-EMPTY:",
            2,
            "output line 3 is not empty",
        );
    }

    #[test]
    fn check_count_needs_that_many() {
        fails("// CHECK-COUNT-3: return", 1, "not found");
        fails("// CHECK-COUNT-2: @f", 1, "not found");
    }

    #[test]
    fn labels_scope_the_checks_between_them() {
        // tg.mul is in @g's block, not @f's.
        fails(
            "// CHECK-LABEL: @f\n// CHECK: tg.mul\n// CHECK-LABEL: @g",
            2,
            "not found",
        );
        // A CHECK-NOT runs to the next label only, and within @g's block it sees tg.mul.
        assert!(run("// CHECK-LABEL: @f\n// CHECK-NOT: tg.mul\n// CHECK-LABEL: @g").is_ok());
        fails(
            "// CHECK-LABEL: @f\n// CHECK-LABEL: @g\n// CHECK-NOT: tg.mul",
            3,
            "excluded",
        );
        // Labels match in order.
        fails(
            "// CHECK-LABEL: @g\n// CHECK-LABEL: @f",
            2,
            "label not found",
        );
        // A CHECK-NEXT after a label follows the label's line.
        assert!(run("// CHECK-LABEL: @f\n// CHECK-NEXT: tg.neg").is_ok());
        fails(
            "// CHECK-LABEL: @f\n// CHECK-NEXT: tg.add",
            2,
            "not on the line after",
        );
    }

    #[test]
    fn variables_must_match_again() {
        fails(
            "// CHECK: %[[N:[0-9]+]] = \"tg.neg\"\n// CHECK: \"tg.mul\"(%[[N]]",
            2,
            "not found",
        );
        fails(
            "// CHECK: \"tg.add\"(%[[X]]",
            1,
            "used before it is defined",
        );
    }

    #[test]
    fn whitespace_is_loose_but_not_absent() {
        fails("// CHECK: %1=", 1, "not found");
    }

    #[test]
    fn bad_directives_are_errors() {
        fails("// CHECK-NXET: x", 1, "unknown directive `CHECK-NXET`");
        fails("// CHECK : x", 1, "no blank before the colon");
        fails("// CHECK-NEXT x", 1, "needs a `:`");
        fails("// CHECK:", 1, "empty pattern");
        fails("// CHECK-EMPTY: x", 1, "takes no pattern");
        fails("// CHECK-NEXT: module", 1, "cannot come first");
        fails(
            "// CHECK-NOT: x\n// CHECK-SAME: module",
            2,
            "cannot come first",
        );
        fails("// CHECK: {{(}}", 1, "bad regex");
        fails("// CHECK: {{x", 1, "without");
        fails("// CHECK-LABEL: [[X:.*]]", 1, "cannot define or use");
        fails("// CHECK-COUNT-0: x", 1, "1 or more");
        // Directive lines are counted.
        assert_eq!(
            run("// RUN: x\n// CHECK: @f\n// other\n// CHECK: @g"),
            Ok(2)
        );
    }
}
