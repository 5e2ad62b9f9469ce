//! Shared by the fuzz tests of `mkc-ir` and `mkc-passes` (included with `#[path]`): the
//! case budget, the seed programs (every file-test case under `tests/ir`) and the text
//! mutations applied to them.

#![allow(dead_code)]

use proptest::prelude::*;
use std::path::Path;
use std::sync::OnceLock;

/// Cases per property: `default`, or `MKC_FUZZ_CASES` when set (long runs; docs/fuzzing.md).
pub fn cases(default: u32) -> u32 {
    std::env::var("MKC_FUZZ_CASES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}

/// Every `.mlir` file under `tests/ir`, read once.
pub fn seeds() -> &'static [String] {
    static SEEDS: OnceLock<Vec<String>> = OnceLock::new();
    SEEDS.get_or_init(|| {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/ir");
        let mut v: Vec<String> = std::fs::read_dir(dir)
            .map(|d| {
                d.filter_map(|e| std::fs::read_to_string(e.ok()?.path()).ok())
                    .collect()
            })
            .unwrap_or_default();
        v.sort();
        assert!(!v.is_empty(), "no seed cases found in tests/ir");
        v
    })
}

/// Pieces worth inserting: numbers at and past every integer width, negative sizes, types
/// of every dialect, punctuation that opens or closes a construct.
pub const INSERTS: &[&str] = &[
    "99999999999999999999",
    "18446744073709551616",
    "9223372036854775807",
    "-9223372036854775808",
    "4294967296",
    "-1",
    "-0",
    "0",
    "1e309",
    "-1.0e-400",
    "0x7FF0000000000000",
    "0xFFFFFFFFFFFFFFFFFF",
    "nan",
    "inf",
    "tensor<0xf32>",
    "tensor<99999999999x99999999999xf32>",
    "tensor<-1xf32>",
    "tensor<?xf32>",
    "tensor<4xi64>",
    "tensor<2x2xbf16>",
    "tensor<f16>",
    "tensor<3xi1>",
    "tensor<2xindex>",
    "i32",
    "f64",
    "f8E4M3FN",
    "index",
    "none",
    "!task.event",
    "!mkc.q<q4_0>",
    "!mkc.q<\"q8_0\">",
    "!demo.thing<4, \"x\">",
    "dense<1.0>",
    "dense<[1, 2]>",
    "dense<[[1], [2, 3]]>",
    "#mkc.weight<\"w\">",
    "\"tg.add\"",
    "\"tg.matmul\"",
    "\"tg.constant\"",
    "\"tg.slice\"",
    "\"tg.reshape\"",
    "\"task.task\"",
    "%0",
    "%arg0",
    "%0#1",
    "^bb0",
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
    "\"",
    "\\",
    "\n",
    "//",
    "x",
];

/// One edit of a text: positions and lengths are chosen relative to the text's length.
#[derive(Clone, Debug)]
pub enum Edit {
    Delete(prop::sample::Index, u8),
    Duplicate(prop::sample::Index, u8),
    Swap(prop::sample::Index, prop::sample::Index, u8),
    Insert(prop::sample::Index, &'static str),
    /// Replaces the number (run of digits) at or after the position.
    Number(prop::sample::Index, &'static str),
    Byte(prop::sample::Index, u8),
}

pub fn edit() -> impl Strategy<Value = Edit> {
    let ix = any::<prop::sample::Index>;
    prop_oneof![
        (ix(), 1u8..24).prop_map(|(a, n)| Edit::Delete(a, n)),
        (ix(), 1u8..48).prop_map(|(a, n)| Edit::Duplicate(a, n)),
        (ix(), ix(), 1u8..24).prop_map(|(a, b, n)| Edit::Swap(a, b, n)),
        (ix(), prop::sample::select(INSERTS)).prop_map(|(a, s)| Edit::Insert(a, s)),
        (ix(), prop::sample::select(INSERTS)).prop_map(|(a, s)| Edit::Number(a, s)),
        (ix(), any::<u8>()).prop_map(|(a, b)| Edit::Byte(a, b)),
    ]
}

/// Edits as a seed index and edits: the seed they start from and the edits to apply.
pub fn mutation() -> impl Strategy<Value = (prop::sample::Index, Vec<Edit>)> {
    (
        any::<prop::sample::Index>(),
        prop::collection::vec(edit(), 1..5),
    )
}

/// Numbers worth putting where a constant, an attribute or a size was: the edges of every
/// integer width, zero (division by it), negative and non-finite floats.
pub const NUMBERS: &[&str] = &[
    "0",
    "1",
    "2",
    "3",
    "-1",
    "-0.0",
    "0.5",
    "127",
    "128",
    "-129",
    "255",
    "256",
    "32767",
    "65536",
    "2147483647",
    "2147483648",
    "-2147483649",
    "4294967296",
    "9223372036854775807",
    "-9223372036854775808",
    "99999999999999999999",
    "1e38",
    "3.5e38",
    "1e309",
    "0x7FC00000",
    "0x7F800000",
    "0xFF800000",
];

/// A seed and one to three of its numbers replaced: edits that keep more inputs valid, so
/// that more of them reach the passes (constant folding above all).
pub fn renumbering() -> impl Strategy<Value = (prop::sample::Index, Vec<Edit>)> {
    (
        any::<prop::sample::Index>(),
        prop::collection::vec(
            (any::<prop::sample::Index>(), prop::sample::select(NUMBERS))
                .prop_map(|(a, s)| Edit::Number(a, s)),
            1..4,
        ),
    )
}

/// Applies `edits` to `text` byte-wise; the result is made valid UTF-8 again (lossily).
pub fn apply(text: &str, edits: &[Edit]) -> String {
    let mut t = text.as_bytes().to_vec();
    for e in edits {
        let len = t.len();
        match *e {
            Edit::Delete(a, n) => {
                let p = a.index(len + 1);
                let end = (p + n as usize).min(t.len());
                t.drain(p..end);
            }
            Edit::Duplicate(a, n) => {
                let p = a.index(len + 1);
                let end = (p + n as usize).min(t.len());
                let piece = t[p..end].to_vec();
                t.splice(end..end, piece);
            }
            Edit::Swap(a, b, n) => {
                if len == 0 {
                    continue;
                }
                let (x, y) = (a.index(len), b.index(len));
                let (x, y) = (x.min(y), x.max(y));
                let n = (n as usize).min(y - x).min(len - y);
                let first = t[x..x + n].to_vec();
                let second = t[y..y + n].to_vec();
                t.splice(y..y + n, first);
                t.splice(x..x + n, second);
            }
            Edit::Insert(a, s) => {
                let p = a.index(len + 1);
                t.splice(p..p, s.bytes());
            }
            Edit::Number(a, s) => {
                let p = a.index(len + 1);
                if let Some(start) = t[p..].iter().position(u8::is_ascii_digit).map(|i| i + p) {
                    let end = t[start..]
                        .iter()
                        .position(|c| !c.is_ascii_digit())
                        .map_or(t.len(), |i| i + start);
                    t.splice(start..end, s.bytes());
                }
            }
            Edit::Byte(a, b) => {
                if len > 0 {
                    t[a.index(len)] = b;
                }
            }
        }
    }
    String::from_utf8_lossy(&t).into_owned()
}
