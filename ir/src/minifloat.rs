//! 8-bit and 4-bit float formats (float8 E4M3FN/E4M3FNUZ/E5M2/E5M2FNUZ/E8M0FNU, float4
//! E2M1FN) as ONNX and `ml_dtypes` define them. Every code of a format is decoded once into a
//! table; encoding picks the nearest representable value, ties to an even code (round to
//! nearest even), with the format's own rules for NaN, infinity and overflow.

use crate::types::ElemType;
use std::sync::OnceLock;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Nan {
    /// IEEE: exponent all ones, mantissa non-zero (and infinities exist).
    Ieee,
    /// Only exponent and mantissa all ones is NaN (E4M3FN).
    AllOnes,
    /// The negative-zero code 0x80 is the only NaN (the FNUZ formats).
    NegZero,
    /// No NaN: NaN converts to -0 (float4 E2M1FN, as ml_dtypes does).
    None,
}

#[derive(Clone, Copy, Debug)]
struct Format {
    exp_bits: u32,
    man_bits: u32,
    bias: i32,
    nan: Nan,
}

fn format(e: ElemType) -> Option<Format> {
    Some(match e {
        ElemType::F8E4M3FN => Format {
            exp_bits: 4,
            man_bits: 3,
            bias: 7,
            nan: Nan::AllOnes,
        },
        ElemType::F8E4M3FNUZ => Format {
            exp_bits: 4,
            man_bits: 3,
            bias: 8,
            nan: Nan::NegZero,
        },
        ElemType::F8E5M2 => Format {
            exp_bits: 5,
            man_bits: 2,
            bias: 15,
            nan: Nan::Ieee,
        },
        ElemType::F8E5M2FNUZ => Format {
            exp_bits: 5,
            man_bits: 2,
            bias: 16,
            nan: Nan::NegZero,
        },
        ElemType::F4E2M1FN => Format {
            exp_bits: 2,
            man_bits: 1,
            bias: 1,
            nan: Nan::None,
        },
        _ => return None,
    })
}

impl Format {
    fn bits(&self) -> u32 {
        1 + self.exp_bits + self.man_bits
    }

    fn decode(&self, code: u32) -> f64 {
        let sign = if code >> (self.bits() - 1) & 1 == 1 {
            -1.0
        } else {
            1.0
        };
        let e = (code >> self.man_bits) & ((1 << self.exp_bits) - 1);
        let m = code & ((1 << self.man_bits) - 1);
        let all_e = (1 << self.exp_bits) - 1;
        let all_m = (1 << self.man_bits) - 1;
        match self.nan {
            Nan::Ieee if e == all_e => {
                return if m == 0 {
                    sign * f64::INFINITY
                } else {
                    f64::NAN
                }
            }
            Nan::AllOnes if e == all_e && m == all_m => return f64::NAN,
            Nan::NegZero if code == 1 << (self.bits() - 1) => return f64::NAN,
            _ => {}
        }
        let frac = m as f64 / (1u32 << self.man_bits) as f64;
        let v = if e == 0 {
            frac * 2f64.powi(1 - self.bias)
        } else {
            (1.0 + frac) * 2f64.powi(e as i32 - self.bias)
        };
        sign * v
    }
}

/// Non-negative finite values and their codes, ascending.
struct Table {
    values: Vec<(f64, u32)>,
    nan_code: u32,
    inf_code: Option<u32>,
    sign_bit: u32,
    has_neg_zero: bool,
    nan: Nan,
}

fn table(e: ElemType) -> Option<&'static Table> {
    static TABLES: OnceLock<Vec<(ElemType, Table)>> = OnceLock::new();
    let all = TABLES.get_or_init(|| {
        [
            ElemType::F8E4M3FN,
            ElemType::F8E4M3FNUZ,
            ElemType::F8E5M2,
            ElemType::F8E5M2FNUZ,
            ElemType::F4E2M1FN,
        ]
        .into_iter()
        .map(|t| {
            let f = format(t).expect("a minifloat");
            let sign_bit = 1 << (f.bits() - 1);
            let mut values: Vec<(f64, u32)> = (0..sign_bit)
                .map(|c| (f.decode(c), c))
                .filter(|(v, _)| v.is_finite())
                .collect();
            values.sort_by(|a, b| a.0.total_cmp(&b.0));
            let nan_code = match f.nan {
                Nan::Ieee => (((1 << f.exp_bits) - 1) << f.man_bits) | (1 << (f.man_bits - 1)),
                Nan::AllOnes => sign_bit - 1,
                Nan::NegZero => sign_bit,
                Nan::None => sign_bit, // -0
            };
            let inf_code = (f.nan == Nan::Ieee).then(|| ((1 << f.exp_bits) - 1) << f.man_bits);
            (
                t,
                Table {
                    values,
                    nan_code,
                    inf_code,
                    sign_bit,
                    has_neg_zero: f.nan != Nan::NegZero,
                    nan: f.nan,
                },
            )
        })
        .collect()
    });
    all.iter().find(|(t, _)| *t == e).map(|(_, t)| t)
}

/// The code of `v` in format `e`. `saturate`: out-of-range values become the largest finite
/// value (ONNX's default for float8); otherwise infinity where the format has one, else NaN.
pub fn encode(v: f64, e: ElemType, saturate: bool) -> Option<u32> {
    if e == ElemType::F8E8M0FNU {
        return Some(encode_e8m0(v, saturate, RoundMode::Nearest));
    }
    let t = table(e)?;
    if v.is_nan() {
        return Some(t.nan_code);
    }
    let neg = v.is_sign_negative();
    let a = v.abs();
    let signed = |code: u32| {
        if neg && (code != 0 || t.has_neg_zero) {
            code | t.sign_bit
        } else {
            code
        }
    };
    let (max, max_code) = *t.values.last()?;
    // Beyond the largest finite value: the largest value when saturating, else infinity
    // where the format has one, else its NaN (float4 has neither and always saturates).
    let overflow = |t: &Table| match (saturate, t.inf_code, t.nan) {
        (true, _, _) | (false, None, Nan::None) => signed(max_code),
        (false, Some(inf), _) => signed(inf),
        (false, None, Nan::AllOnes) => t.nan_code | if neg { t.sign_bit } else { 0 },
        (false, None, _) => t.nan_code,
    };
    if a.is_infinite() {
        return Some(overflow(t));
    }
    let i = t.values.partition_point(|(x, _)| *x < a);
    if i == t.values.len() {
        // Beyond the largest value: within half an ulp it still rounds to it.
        let ulp = max - t.values[t.values.len() - 2].0;
        let rounds_down = a < max + ulp / 2.0 || (a == max + ulp / 2.0 && max_code & 1 == 0);
        return Some(if rounds_down {
            signed(max_code)
        } else {
            overflow(t)
        });
    }
    let (hi, hi_code) = t.values[i];
    if hi == a || i == 0 {
        return Some(signed(hi_code));
    }
    let (lo, lo_code) = t.values[i - 1];
    let code = if a - lo < hi - a || (a - lo == hi - a && lo_code & 1 == 0) {
        lo_code
    } else {
        hi_code
    };
    Some(signed(code))
}

/// The value of a code of format `e`.
pub fn decode(code: u32, e: ElemType) -> Option<f64> {
    if e == ElemType::F8E8M0FNU {
        return Some(if code & 0xFF == 0xFF {
            f64::NAN
        } else {
            2f64.powi((code & 0xFF) as i32 - 127)
        });
    }
    Some(format(e)?.decode(code))
}

/// Rounds `v` to format `e` (non-saturating, as arithmetic does); `None` for other types.
pub fn round(v: f64, e: ElemType) -> Option<f64> {
    decode(encode(v, e, false)?, e)
}

/// How E8M0 (a power-of-two scale) rounds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RoundMode {
    Up,
    Down,
    Nearest,
}

/// E8M0: an unsigned power of two 2^(code - 127); 0xFF is NaN.
pub fn encode_e8m0(v: f64, saturate: bool, mode: RoundMode) -> u32 {
    if v.is_nan() || v < 0.0 {
        return 0xFF;
    }
    if v.is_infinite() {
        return if saturate { 0xFE } else { 0xFF };
    }
    if v <= 2f64.powi(-127) {
        return 0;
    }
    let e = v.log2();
    let k = match mode {
        RoundMode::Up => e.ceil(),
        RoundMode::Down => e.floor(),
        RoundMode::Nearest => {
            let (lo, hi) = (e.floor(), e.ceil());
            if v - 2f64.powf(lo) < 2f64.powf(hi) - v {
                lo
            } else {
                hi
            }
        }
    } as i64;
    let code = k + 127;
    if code > 0xFE {
        if saturate {
            0xFE
        } else {
            0xFF
        }
    } else {
        code.max(0) as u32
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_values_round_trip() {
        // E4M3FN: 448 is the largest value; 0x7F is NaN.
        assert_eq!(decode(0x7E, ElemType::F8E4M3FN), Some(448.0));
        assert!(decode(0x7F, ElemType::F8E4M3FN).unwrap().is_nan());
        assert_eq!(encode(1e6, ElemType::F8E4M3FN, true), Some(0x7E));
        assert_eq!(encode(0.4789, ElemType::F8E4M3FN, true), Some(0x2F)); // 0.46875
                                                                          // E5M2 has infinities.
        assert_eq!(encode(1e6, ElemType::F8E5M2, false), Some(0x7C));
        assert_eq!(encode(1e6, ElemType::F8E5M2, true), Some(0x7B)); // 57344
                                                                     // FNUZ: 0x80 is NaN, so -0 encodes as +0.
        assert_eq!(encode(-0.0, ElemType::F8E4M3FNUZ, true), Some(0x00));
        assert!(decode(0x80, ElemType::F8E5M2FNUZ).unwrap().is_nan());
        // float4 E2M1: 0.25 is a tie between 0 and 0.5 -> even (0); 3.5 -> 4.
        assert_eq!(
            encode(0.25, ElemType::F4E2M1FN, true).map(|c| decode(c, ElemType::F4E2M1FN)),
            Some(Some(0.0))
        );
        assert_eq!(
            decode(
                encode(-3.5, ElemType::F4E2M1FN, true).unwrap(),
                ElemType::F4E2M1FN
            ),
            Some(-4.0)
        );
        assert_eq!(
            decode(
                encode(9.0, ElemType::F4E2M1FN, true).unwrap(),
                ElemType::F4E2M1FN
            ),
            Some(6.0)
        );
        // E8M0 rounds by mode.
        assert_eq!(encode_e8m0(1.1, true, RoundMode::Up), 128);
        assert_eq!(encode_e8m0(1.1, true, RoundMode::Down), 127);
        assert_eq!(encode_e8m0(0.0, true, RoundMode::Up), 0);
    }
}
