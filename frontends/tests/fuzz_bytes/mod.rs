//! Byte-level mutations for the file-format fuzz tests (GGUF, safetensors, JSON configs,
//! artifacts), included with `#[path]` by the tests that use them.

#![allow(dead_code)]

use proptest::prelude::*;
use proptest::sample::Index;

/// Cases per property: `default`, or `MKC_FUZZ_CASES` when set (long runs; docs/fuzzing.md).
pub fn cases(default: u32) -> u32 {
    std::env::var("MKC_FUZZ_CASES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}

/// Values worth writing over a length, count, offset or dimension.
pub const HUGE: &[u64] = &[
    0,
    1,
    7,
    255,
    0x7FFF_FFFF,
    0xFFFF_FFFF,
    0x1_0000_0000,
    1 << 40,
    (1 << 62) + 1,
    i64::MAX as u64,
    1 << 63,
    u64::MAX - 7,
    u64::MAX,
];

/// Text worth inserting into JSON (or any text format): huge and negative numbers, odd
/// values of the wrong kind, structure.
pub const JSON_INSERTS: &[&str] = &[
    "99999999999999999999",
    "18446744073709551616",
    "9223372036854775807",
    "-9223372036854775808",
    "4294967296",
    "-1",
    "0",
    "1e309",
    "-1e-400",
    "0.5",
    "null",
    "true",
    "\"\"",
    "\"x\"",
    "[]",
    "{}",
    "[1, 2]",
    "{\"type\": \"llama3\", \"factor\": 0}",
    ",",
    ":",
    "\"",
    "\\u0000",
    "\\ud800",
    "{",
    "}",
    "[",
    "]",
];

/// One edit of a byte string; positions are fractions of its length (of its head, below).
#[derive(Clone, Debug)]
pub enum Edit {
    BitFlip(Index, u8),
    Byte(Index, u8),
    Truncate(Index),
    Insert(Index, Vec<u8>),
    Delete(Index, u8),
    Duplicate(Index, u8),
    /// Writes a little-endian u64 (or its low u32) over the bytes at the position.
    Word(Index, u64, bool),
    Text(Index, &'static str),
    /// Replaces the run of ASCII digits at or after the position.
    Number(Index, &'static str),
}

pub fn edit() -> impl Strategy<Value = Edit> {
    let at = any::<Index>;
    prop_oneof![
        (at(), 0u8..8).prop_map(|(a, b)| Edit::BitFlip(a, b)),
        (at(), any::<u8>()).prop_map(|(a, b)| Edit::Byte(a, b)),
        at().prop_map(Edit::Truncate),
        (at(), prop::collection::vec(any::<u8>(), 1..16)).prop_map(|(a, b)| Edit::Insert(a, b)),
        (at(), 1u8..32).prop_map(|(a, n)| Edit::Delete(a, n)),
        (at(), 1u8..32).prop_map(|(a, n)| Edit::Duplicate(a, n)),
        (at(), prop::sample::select(HUGE), any::<bool>()).prop_map(|(a, v, w)| Edit::Word(a, v, w)),
        (at(), prop::sample::select(JSON_INSERTS)).prop_map(|(a, s)| Edit::Text(a, s)),
        (at(), prop::sample::select(JSON_INSERTS)).prop_map(|(a, s)| Edit::Number(a, s)),
    ]
}

pub fn edits() -> impl Strategy<Value = Vec<Edit>> {
    prop::collection::vec(edit(), 1..5)
}

/// Applies `edits` to `bytes`, anywhere.
pub fn apply(bytes: &[u8], edits: &[Edit]) -> Vec<u8> {
    apply_in(bytes, edits, usize::MAX)
}

/// Applies `edits` to `bytes`, every position but a truncation's within the first `head`
/// bytes (a format's header and tables, whose data after them is not worth many edits).
pub fn apply_in(bytes: &[u8], edits: &[Edit], head: usize) -> Vec<u8> {
    let mut b = bytes.to_vec();
    for e in edits {
        let len = b.len();
        // A position in 0..=max, within the head.
        let pos = |a: &Index, max: usize| a.index(max.min(head) + 1).min(max);
        match e {
            Edit::BitFlip(a, bit) => {
                if len > 0 {
                    let i = pos(a, len - 1);
                    b[i] ^= 1 << bit;
                }
            }
            Edit::Byte(a, v) => {
                if len > 0 {
                    let i = pos(a, len - 1);
                    b[i] = *v;
                }
            }
            Edit::Truncate(a) => b.truncate(a.index(len + 1)),
            Edit::Insert(a, v) => {
                let p = pos(a, len);
                b.splice(p..p, v.iter().copied());
            }
            Edit::Delete(a, n) => {
                let p = pos(a, len);
                let end = (p + *n as usize).min(len);
                b.drain(p..end);
            }
            Edit::Duplicate(a, n) => {
                let p = pos(a, len);
                let end = (p + *n as usize).min(len);
                let piece = b[p..end].to_vec();
                b.splice(end..end, piece);
            }
            Edit::Word(a, v, wide) => {
                let w = if *wide { 8 } else { 4 };
                if len >= w {
                    let p = pos(a, len - w);
                    b[p..p + w].copy_from_slice(&v.to_le_bytes()[..w]);
                }
            }
            Edit::Text(a, s) => {
                let p = pos(a, len);
                b.splice(p..p, s.bytes());
            }
            Edit::Number(a, s) => {
                let p = pos(a, len);
                if let Some(start) = b[p..].iter().position(u8::is_ascii_digit).map(|i| i + p) {
                    let end = b[start..]
                        .iter()
                        .position(|c| !c.is_ascii_digit())
                        .map_or(len, |i| i + start);
                    b.splice(start..end, s.bytes());
                }
            }
        }
    }
    b
}
