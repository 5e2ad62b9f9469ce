//! Comparing computed numbers with references (or with each other), NaN-aware: every
//! comparison in mkc (`mkc check`, `mkc onnx-test`, the GPU against the simulator) goes
//! through here. A NaN or an infinity in an output is a failure with its place, never a
//! value that a `max` or an `argmax` quietly skips; one in a reference is reported too.

use std::fmt;

/// Which side of a comparison a value belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Side {
    /// The computed values (`got`).
    Output,
    /// What they are compared with (`want`).
    Reference,
}

/// The first non-finite value found on one side: where, what, and the value beside it on
/// the other side (none for [`argmax`], which has one side).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct NonFinite {
    pub side: Side,
    pub index: usize,
    /// The NaN or infinity.
    pub value: f64,
    pub other: Option<f64>,
}

/// Why two sequences do not match.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum CompareError {
    /// The two have different lengths.
    Length { got: usize, want: usize },
    /// There is nothing to compare (or to take the argmax of).
    Empty,
    /// A NaN or infinity (see [`NonFinite::side`] for which side holds it).
    NonFinite(NonFinite),
    /// A finite element outside the tolerance ([`allclose`]), or a non-finite reference
    /// element that the output does not reproduce exactly.
    NotClose { index: usize, got: f64, want: f64 },
}

impl fmt::Display for CompareError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            CompareError::Length { got, want } => {
                write!(f, "{got} elements, the reference has {want}")
            }
            CompareError::Empty => write!(f, "no elements"),
            CompareError::NonFinite(NonFinite {
                side,
                index,
                value,
                other,
            }) => {
                match side {
                    Side::Output => write!(f, "element {index} is {value}")?,
                    Side::Reference => write!(f, "the reference's element {index} is {value}")?,
                }
                match (side, other) {
                    (Side::Output, Some(o)) => write!(f, ", expected {o}"),
                    (Side::Reference, Some(o)) => write!(f, " (got {o})"),
                    (_, None) => Ok(()),
                }
            }
            CompareError::NotClose { index, got, want } => {
                write!(f, "element {index}: got {got}, expected {want}")
            }
        }
    }
}

impl std::error::Error for CompareError {}

/// The outcome of [`compare`]. The errors are NaN-propagating: any non-finite element
/// makes `rel_err` and `max_abs_err` non-finite too, so a caller that reads only the
/// numbers still fails a `<= tolerance` test.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Comparison {
    /// Elements compared.
    pub len: usize,
    /// Relative L2 error: ||got - want|| / ||want||.
    pub rel_err: f64,
    /// The largest |got - want|.
    pub max_abs_err: f64,
    /// Where `max_abs_err` is (the first NaN difference, if any).
    pub worst: usize,
    /// The first element where the output is NaN or infinite and the reference is finite.
    pub got_non_finite: Option<NonFinite>,
    /// The first element where the reference itself is NaN or infinite.
    pub want_non_finite: Option<NonFinite>,
}

impl Comparison {
    /// Ok when both sides are finite everywhere; else the first non-finite element (the
    /// reference's first when both have one: a broken reference is the thing to fix).
    pub fn require_finite(&self) -> Result<(), CompareError> {
        match self.want_non_finite.or(self.got_non_finite) {
            Some(nf) => Err(CompareError::NonFinite(nf)),
            None => Ok(()),
        }
    }
}

/// The larger of two values, NaN if either is (`f64::max` drops a NaN).
pub fn nan_max(a: f64, b: f64) -> f64 {
    if a.is_nan() || b.is_nan() {
        f64::NAN
    } else {
        a.max(b)
    }
}

/// Compares `got` with `want` element by element. Fails only on a length mismatch; the
/// non-finite elements are in the result (see [`Comparison::require_finite`]).
pub fn compare(got: &[f64], want: &[f64]) -> Result<Comparison, CompareError> {
    if got.len() != want.len() {
        return Err(CompareError::Length {
            got: got.len(),
            want: want.len(),
        });
    }
    let (mut num, mut den) = (0.0f64, 0.0f64);
    let (mut max_abs_err, mut worst) = (0.0f64, 0usize);
    let (mut got_non_finite, mut want_non_finite) = (None, None);
    for (i, (&g, &w)) in got.iter().zip(want).enumerate() {
        let d = g - w;
        num += d * d;
        den += w * w;
        // A NaN difference is the worst, and the first one stays (nothing exceeds NaN).
        let e = d.abs();
        if !max_abs_err.is_nan() && (e.is_nan() || e > max_abs_err) {
            (max_abs_err, worst) = (e, i);
        }
        if !w.is_finite() && want_non_finite.is_none() {
            want_non_finite = Some(NonFinite {
                side: Side::Reference,
                index: i,
                value: w,
                other: Some(g),
            });
        }
        if !g.is_finite() && w.is_finite() && got_non_finite.is_none() {
            got_non_finite = Some(NonFinite {
                side: Side::Output,
                index: i,
                value: g,
                other: Some(w),
            });
        }
    }
    Ok(Comparison {
        len: got.len(),
        rel_err: (num / den.max(f64::MIN_POSITIVE)).sqrt(),
        max_abs_err,
        worst,
        got_non_finite,
        want_non_finite,
    })
}

/// [`compare`], then [`Comparison::require_finite`]: the comparison of two sequences that
/// must both be finite (logits against references, the GPU against the simulator).
pub fn compare_finite(got: &[f64], want: &[f64]) -> Result<Comparison, CompareError> {
    let c = compare(got, want)?;
    c.require_finite()?;
    Ok(c)
}

/// Absolute and relative tolerance of [`allclose`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Tolerance {
    pub rtol: f64,
    pub atol: f64,
}

/// |got - want| <= atol + rtol * |want| (false if the bound is NaN).
fn within(got: f64, want: f64, tol: Tolerance) -> bool {
    (got - want).abs() <= tol.atol + tol.rtol * want.abs()
}

/// Elementwise closeness, |got - want| <= atol + rtol * |want|, as numpy's `allclose` with
/// `equal_nan`: a reference element that is NaN or infinite must be reproduced exactly
/// (NaN by a NaN, an infinity by the same infinity; ONNX's expected outputs hold such
/// values), else it fails as [`CompareError::NotClose`]; a non-finite output element where
/// the reference is finite fails as [`CompareError::NonFinite`]. Returns the first failure.
pub fn allclose(got: &[f64], want: &[f64], tol: Tolerance) -> Result<(), CompareError> {
    if got.len() != want.len() {
        return Err(CompareError::Length {
            got: got.len(),
            want: want.len(),
        });
    }
    for (index, (&g, &w)) in got.iter().zip(want).enumerate() {
        if !w.is_finite() {
            if !(g == w || (g.is_nan() && w.is_nan())) {
                return Err(CompareError::NotClose {
                    index,
                    got: g,
                    want: w,
                });
            }
        } else if !g.is_finite() {
            return Err(CompareError::NonFinite(NonFinite {
                side: Side::Output,
                index,
                value: g,
                other: Some(w),
            }));
        } else if !within(g, w, tol) {
            return Err(CompareError::NotClose {
                index,
                got: g,
                want: w,
            });
        }
    }
    Ok(())
}

/// Index of the first maximum. A NaN or an infinity anywhere is an error with its place
/// (a NaN compares false with everything, so a plain scan would skip it); so is an empty
/// slice.
pub fn argmax(v: &[f64]) -> Result<usize, CompareError> {
    if v.is_empty() {
        return Err(CompareError::Empty);
    }
    let mut best = 0;
    for (i, &x) in v.iter().enumerate() {
        if !x.is_finite() {
            return Err(CompareError::NonFinite(NonFinite {
                side: Side::Output,
                index: i,
                value: x,
                other: None,
            }));
        }
        if x > v[best] {
            best = i;
        }
    }
    Ok(best)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equal_sequences_compare_clean() {
        let c = compare_finite(&[1.0, -2.0, 3.0], &[1.0, -2.0, 3.0]).unwrap();
        assert_eq!((c.len, c.rel_err, c.max_abs_err), (3, 0.0, 0.0));
        assert_eq!((c.got_non_finite, c.want_non_finite), (None, None));
    }

    #[test]
    fn the_worst_element_and_the_errors_are_reported() {
        let c = compare_finite(&[1.0, 2.5, 3.0, 4.1], &[1.0, 2.0, 3.0, 4.0]).unwrap();
        assert_eq!(c.worst, 1);
        assert_eq!(c.max_abs_err, 0.5);
        let l2 = ((0.25f64 + 0.1 * 0.1) / 30.0).sqrt();
        assert!((c.rel_err - l2).abs() < 1e-12, "{}", c.rel_err);
    }

    #[test]
    fn a_nan_or_infinite_output_fails_with_its_place() {
        for bad in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
            let got = [1.0, 2.0, bad, 4.0, bad];
            let want = [1.0, 2.0, 3.0, 4.0, 5.0];
            let c = compare(&got, &want).unwrap();
            // The numbers do not hide it either.
            let passes = |x: f64| x <= 1.0;
            assert!(!passes(c.rel_err), "{bad}: {}", c.rel_err);
            assert!(!passes(c.max_abs_err), "{bad}: {}", c.max_abs_err);
            assert_eq!(c.worst, 2, "{bad}");
            let e = compare_finite(&got, &want).unwrap_err();
            let CompareError::NonFinite(nf) = e else {
                panic!("{bad}: {e:?}")
            };
            assert_eq!((nf.side, nf.index, nf.other), (Side::Output, 2, Some(3.0)));
            assert_eq!(nf.value.to_bits(), bad.to_bits());
            assert_eq!(e.to_string(), format!("element 2 is {bad}, expected 3"));
        }
    }

    #[test]
    fn a_non_finite_reference_is_reported_too() {
        let got = [1.0, f64::NAN, 3.0];
        let want = [1.0, 2.0, f64::NAN];
        let c = compare(&got, &want).unwrap();
        assert_eq!(c.got_non_finite.map(|n| n.index), Some(1));
        assert_eq!(c.want_non_finite.map(|n| n.index), Some(2));
        let e = c.require_finite().unwrap_err();
        assert_eq!(
            e.to_string(),
            "the reference's element 2 is NaN (got 3)",
            "{e:?}"
        );
        // Both NaN at the same place: still a failure of a finite comparison.
        let e = compare_finite(&[f64::NAN], &[f64::NAN]).unwrap_err();
        assert!(matches!(
            e,
            CompareError::NonFinite(NonFinite {
                side: Side::Reference,
                index: 0,
                ..
            })
        ));
    }

    #[test]
    fn lengths_must_match() {
        assert_eq!(
            compare(&[1.0], &[1.0, 2.0]),
            Err(CompareError::Length { got: 1, want: 2 })
        );
        assert!(allclose(
            &[1.0],
            &[],
            Tolerance {
                rtol: 0.0,
                atol: 0.0
            }
        )
        .is_err());
    }

    #[test]
    fn nan_max_keeps_the_nan() {
        assert!(nan_max(0.0, f64::NAN).is_nan());
        assert!(nan_max(f64::NAN, 1.0).is_nan());
        assert_eq!(nan_max(1.0, 2.0), 2.0);
        assert!([0.5, f64::NAN, 0.1].into_iter().fold(0.0, nan_max).is_nan());
    }

    #[test]
    fn argmax_fails_on_a_nan_or_an_infinity() {
        assert_eq!(argmax(&[1.0, 3.0, 3.0, 2.0]), Ok(1));
        assert_eq!(argmax(&[]), Err(CompareError::Empty));
        // A NaN first used to win (nothing exceeds it); elsewhere it used to be skipped.
        for (v, at) in [
            (vec![f64::NAN, 1.0, 2.0], 0),
            (vec![1.0, f64::NAN, 2.0], 1),
            (vec![1.0, 2.0, f64::INFINITY], 2),
            (vec![f64::NEG_INFINITY, 2.0], 0),
        ] {
            let e = argmax(&v).unwrap_err();
            assert!(
                matches!(e, CompareError::NonFinite(NonFinite { index, .. }) if index == at),
                "{v:?}: {e:?}"
            );
            assert!(e.to_string().contains(&format!("element {at} is")), "{e}");
        }
    }

    #[test]
    fn allclose_matches_reference_non_finites_exactly_and_fails_new_ones() {
        let tol = Tolerance {
            rtol: 1e-3,
            atol: 1e-7,
        };
        let want = [1.0, f64::NAN, f64::INFINITY, -2.0];
        assert_eq!(
            allclose(&[1.0005, f64::NAN, f64::INFINITY, -2.0], &want, tol),
            Ok(())
        );
        // An output NaN or infinity where the reference is finite.
        for bad in [f64::NAN, f64::INFINITY] {
            let e = allclose(&[1.0, f64::NAN, f64::INFINITY, bad], &want, tol).unwrap_err();
            assert!(
                matches!(
                    e,
                    CompareError::NonFinite(NonFinite {
                        side: Side::Output,
                        index: 3,
                        ..
                    })
                ),
                "{e:?}"
            );
            assert!(e.to_string().starts_with("element 3 is"), "{e}");
        }
        // The reference's NaN or infinity not reproduced.
        for (got, at) in [
            ([1.0, 0.0, f64::INFINITY, -2.0], 1),
            ([1.0, f64::NAN, f64::NEG_INFINITY, -2.0], 2),
            ([1.0, f64::NAN, f64::NAN, -2.0], 2),
        ] {
            let e = allclose(&got, &want, tol).unwrap_err();
            assert!(
                matches!(e, CompareError::NotClose { index, .. } if index == at),
                "{got:?}: {e:?}"
            );
        }
        // Out of tolerance.
        assert_eq!(
            allclose(&[1.01, f64::NAN, f64::INFINITY, -2.0], &want, tol),
            Err(CompareError::NotClose {
                index: 0,
                got: 1.01,
                want: 1.0
            })
        );
    }
}
