//! `tg.matmul`: numpy's matmul, batched and broadcast. Weights (`b`) may have another float
//! type than the activation; the product accumulates in f64 and rounds to the result type.
//! With `act_q8`, `a` is first rounded to 8 bits in blocks of 32 along K
//! ([`crate::quant::round_q8`]): the product integer dot products compute (llama.cpp's
//! `q8_1` activations).

use super::{bool_attr, tensor_operand};
use crate::attr::Attrs;
use crate::dialect::task::TileBox;
use crate::dialect::tg::elementwise::{broadcast_source, Scalar};
use crate::registry::{AttrKind, Registry, Traits};
use crate::tensor::{Data, Tensor};
use crate::tiling::{NeedsInput, Region};
use crate::types::{broadcast_shapes, TensorType, Type};

crate::op_kinds! {
    /// numpy matmul; `transpose_b` reads b as [..., N, K]; `act_q8` rounds `a` to 8 bits
    /// in blocks of 32 first.
    MatMul = "tg.matmul",
    /// `acc + x @ w^T` for a vector x [K], a weight w [N, K] and acc [N]: a product whose
    /// result adds onto `acc` in place, so that tasks may each add the part of the sum over
    /// their slice of K ([`SPLIT_K`] tiles). `act_q8` rounds x as `tg.matmul`'s does: in
    /// blocks of 32 along K, so a part whose K range starts on a block rounds its own blocks.
    MatMulAcc = "tg.matmul_acc",
}

/// How a `tg.matmul_acc` tile is cut along K: a tile box of rank 2, `[(k0, k1), (n0, n1)]`,
/// is the part of the sum over `k0..k1` for rows `n0..n1`, without `acc` (the task adds it
/// to what is in memory); a box of rank 1 is the ordinary tile, `acc` included.
pub const SPLIT_K: &str = "split-k boxes";

pub fn register(r: &mut Registry) {
    r.op(
        MatMul::NAME,
        "numpy matmul: batched and broadcast; transpose_b = true reads b as [..., N, K]",
    )
    .operands(2)
    .results(1)
    .optional_attr("transpose_b", AttrKind::Bool)
    .optional_attr("act_q8", AttrKind::Bool)
    .traits(Traits::PURE | Traits::HEAVY)
    .infer(infer_matmul)
    .interpret(|e| {
        Ok(vec![matmul(
            e.arg(0),
            e.arg(1),
            e.flag("transpose_b", false),
            e.flag("act_q8", false),
            e.out_ty(0)?,
            e.only,
        )?])
    })
    .tile(tile_matmul);
    r.op(
        MatMulAcc::NAME,
        "acc + x @ w^T for x [K], w [N, K], acc [N]: the result is acc updated in place; act_q8 rounds x to 8 bits in blocks of 32 first",
    )
    .operands(3)
    .results(1)
    .optional_attr("act_q8", AttrKind::Bool)
    .traits(Traits::PURE | Traits::HEAVY)
    .infer(infer_matmul_acc)
    .interpret(|e| {
        let rounded;
        let x = match e.flag("act_q8", false) {
            true => {
                rounded = round_q8_vector(e.arg(0))?;
                &rounded
            }
            false => e.arg(0),
        };
        Ok(vec![matmul_acc(
            x,
            e.arg(1),
            e.arg(2),
            e.out_ty(0)?,
            e.only,
        )?])
    })
    .tile(tile_matmul_acc);
}

fn infer_matmul_acc(ins: &[Type], attrs: &Attrs) -> Result<Vec<Type>, String> {
    let (x, w, acc) = (
        tensor_operand(&ins[0], 0)?,
        tensor_operand(&ins[1], 1)?,
        tensor_operand(&ins[2], 2)?,
    );
    let float = x.elem.is_float() && w.elem.is_float() && acc.elem.is_float();
    if !float || x.rank() != 1 || w.rank() != 2 || acc.rank() != 1 {
        return Err(format!(
            "takes a float vector x [K], a float weight [N, K] and a float acc [N], not {x}, {w}, {acc}"
        ));
    }
    if w.shape[1] != x.shape[0] || w.shape[0] != acc.shape[0] {
        return Err(format!(
            "shapes do not fit: x {x}, w {w} (read as [N, K]), acc {acc}"
        ));
    }
    if bool_attr(attrs, "act_q8", false) && x.shape[0] % crate::quant::Q8_ACT_BLOCK as i64 != 0 {
        return Err(format!(
            "act_q8 rounds x in blocks of {} along K: not {x}",
            crate::quant::Q8_ACT_BLOCK
        ));
    }
    Ok(vec![ins[2].clone()])
}

/// `acc + x @ w^T`, or (`only`) just those elements: boxes of rank 1 are rows of the
/// result, acc included; boxes of rank 2 ([`SPLIT_K`]) are the part of the sum over their
/// K range, without acc. Every other element is poison.
fn matmul_acc(
    x: &Tensor,
    w: &Tensor,
    acc: &Tensor,
    ty: TensorType,
    only: Option<&Region>,
) -> Result<Tensor, String> {
    let k = x.ty.shape[0] as usize;
    let sum = |row: usize, k0: usize, k1: usize| -> f64 {
        (k0..k1).fold(0f64, |s, p| s + x.f(p) * w.f(row * k + p))
    };
    let Some(boxes) = only.filter(|r| r.iter().any(|b| b.len() == 2)) else {
        return Ok(crate::interpret::from_fn_in(ty, only, |n| {
            Scalar::F(acc.f(n) + sum(n, 0, k))
        }));
    };
    let mut t = Tensor::poison(ty);
    for b in boxes {
        let [(k0, k1), (n0, n1)] = b[..] else {
            return Err(format!("a {SPLIT_K} region mixes ranks: {boxes:?}"));
        };
        for n in n0..n1 {
            let part = sum(n as usize, k0 as usize, k1 as usize);
            let prev = t.f(n as usize);
            // Boxes of one row over other K ranges add up.
            t.set(
                n as usize,
                Scalar::F(if prev.is_nan() { part } else { prev + part }),
            );
        }
    }
    Ok(t)
}

/// A row tile needs all of x, its rows of w and of acc; a [`SPLIT_K`] tile needs x over
/// its K range, w over its rows and K range, and not acc (the sum adds onto memory).
fn tile_matmul_acc(n: &NeedsInput) -> Vec<Option<Region>> {
    let k = n.shapes[0][0];
    if n.out.iter().any(|b| b.len() == 2) {
        let x = n.map(&|b| vec![vec![b[0]]]);
        let w = n.map(&|b| vec![vec![b[1], b[0]]]);
        return vec![Some(x), Some(w), None];
    }
    let w = n.map(&|b| vec![vec![b[0], (0, k)]]);
    let acc = n.map(&|b| vec![b.clone()]);
    vec![n.full(0), Some(w), Some(acc)]
}

/// The shape of numpy's matmul of `a` and `b` (b already in [..., K, N] orientation).
pub fn matmul_shape(a: &[i64], b: &[i64]) -> Result<Vec<i64>, String> {
    if a.is_empty() || b.is_empty() {
        return Err("matmul operands must have rank >= 1".into());
    }
    let a2: Vec<i64> = if a.len() == 1 {
        vec![1, a[0]]
    } else {
        a.to_vec()
    };
    let b2: Vec<i64> = if b.len() == 1 {
        vec![b[0], 1]
    } else {
        b.to_vec()
    };
    let (m, k) = (a2[a2.len() - 2], a2[a2.len() - 1]);
    let (k2, n) = (b2[b2.len() - 2], b2[b2.len() - 1]);
    if k != k2 {
        return Err(format!("contraction dimensions differ: {k} and {k2}"));
    }
    let batch = broadcast_shapes(&a2[..a2.len() - 2], &b2[..b2.len() - 2])
        .ok_or("batch dimensions do not broadcast")?;
    let mut out = batch;
    if a.len() > 1 {
        out.push(m);
    }
    if b.len() > 1 {
        out.push(n);
    }
    Ok(out)
}

fn infer_matmul(ins: &[Type], attrs: &Attrs) -> Result<Vec<Type>, String> {
    let (a, b) = (tensor_operand(&ins[0], 0)?, tensor_operand(&ins[1], 1)?);
    if a.elem.is_float() != b.elem.is_float() || (!a.elem.is_float() && a.elem != b.elem) {
        return Err(format!(
            "operand element types {} and {} do not mix",
            a.elem, b.elem
        ));
    }
    let mut bs = b.shape.clone();
    if bool_attr(attrs, "transpose_b", false) {
        if bs.len() < 2 {
            return Err("transpose_b needs b of rank >= 2".into());
        }
        let n = bs.len();
        bs.swap(n - 1, n - 2);
    }
    let shape = matmul_shape(&a.shape, &bs).map_err(|e| format!("{e} ({a} x {b})"))?;
    if bool_attr(attrs, "act_q8", false) {
        let k = a.shape.last().copied().unwrap_or(0);
        if !a.elem.is_float() || k % crate::quant::Q8_ACT_BLOCK as i64 != 0 {
            return Err(format!(
                "act_q8 rounds a float a in blocks of {} along K: not {a}",
                crate::quant::Q8_ACT_BLOCK
            ));
        }
    }
    Ok(vec![Type::tensor(shape, a.elem)])
}

/// A float vector rounded to 8 bits in blocks of 32 ([`crate::quant::round_q8`]).
fn round_q8_vector(a: &Tensor) -> Result<Tensor, String> {
    let x: Vec<f32> = match &a.data {
        Data::F32(v) => v.clone(),
        Data::F64(v) => v.iter().map(|&v| v as f32).collect(),
        Data::I64(_) => return Err("act_q8 on an integer product".into()),
    };
    let k = *a.ty.shape.last().unwrap_or(&1) as usize;
    Ok(Tensor {
        ty: a.ty.clone(),
        data: Data::F64(crate::quant::round_q8(&x, k)?),
    })
}

/// The product, or (`only`) just those elements of it, every other element poison.
fn matmul(
    a: &Tensor,
    b: &Tensor,
    transpose_b: bool,
    act_q8: bool,
    ty: TensorType,
    only: Option<&Region>,
) -> Result<Tensor, String> {
    let rounded;
    let a = if act_q8 {
        rounded = round_q8_vector(a)?;
        &rounded
    } else {
        a
    };
    let a2: Vec<i64> = if a.ty.rank() == 1 {
        vec![1, a.ty.shape[0]]
    } else {
        a.ty.shape.clone()
    };
    let mut b2: Vec<i64> = if b.ty.rank() == 1 {
        vec![b.ty.shape[0], 1]
    } else {
        b.ty.shape.clone()
    };
    let nb = b2.len();
    let b_stored = b2.clone();
    if transpose_b {
        b2.swap(nb - 1, nb - 2);
    }
    let (m, k, n) = (
        a2[a2.len() - 2] as usize,
        a2[a2.len() - 1] as usize,
        b2[nb - 1] as usize,
    );
    let batch_shape = matmul_shape(&a2, &b2)?;
    let batch_shape = &batch_shape[..batch_shape.len() - 2];
    let (a_batch, b_batch) = (&a2[..a2.len() - 2], &b_stored[..nb - 2]);
    // Element access without copying whole operands (weights can be gigabytes).
    let get = |t: &Tensor, i: usize| -> f64 {
        match &t.data {
            Data::F32(v) => v[i] as f64,
            Data::F64(v) => v[i],
            Data::I64(v) => v[i] as f64,
        }
    };
    let int = !ty.elem.is_float();
    // Element (batch, i, j) of the product: the result's flat index, as the result's
    // shape drops only axes of size 1.
    let element = |flat: usize| -> Scalar {
        let (bi, i, j) = (
            flat / (m * n).max(1),
            flat / n.max(1) % m.max(1),
            flat % n.max(1),
        );
        let row = broadcast_source(bi, batch_shape, a_batch) * m * k + i * k;
        let bb = broadcast_source(bi, batch_shape, b_batch) * k * n;
        let b_at = |p: usize| {
            if transpose_b {
                bb + j * k + p
            } else {
                bb + p * n + j
            }
        };
        if int {
            let mut acc = 0i64;
            for p in 0..k {
                acc = acc.wrapping_add(a.get(row + p).i().wrapping_mul(b.get(b_at(p)).i()));
            }
            return Scalar::I(acc);
        }
        // The same sum in the same order, on contiguous rows (the common case: a weight
        // [N, K] read transposed).
        if let (Data::F32(x), Data::F32(y), true) = (&a.data, &b.data, transpose_b) {
            let (x, y) = (&x[row..row + k], &y[bb + j * k..bb + j * k + k]);
            return Scalar::F(
                x.iter()
                    .zip(y)
                    .fold(0f64, |acc, (&p, &q)| acc + p as f64 * q as f64),
            );
        }
        let mut acc = 0f64;
        for p in 0..k {
            acc += get(a, row + p) * get(b, b_at(p));
        }
        Scalar::F(acc)
    };
    Ok(crate::interpret::from_fn_in(ty, only, element))
}

/// A tile of the product needs its rows of `a` (batch broadcast) and its columns of `b`,
/// each along all of K.
fn tile_matmul(n: &NeedsInput) -> Vec<Option<Region>> {
    let (a, bs) = (&n.shapes[0], &n.shapes[1]);
    let out_shape = &n.out_shape;
    let tb = n.flag("transpose_b");
    let (a_vec, b_vec) = (a.len() == 1, bs.len() == 1);
    let batch = out_shape.len() - usize::from(!a_vec) - usize::from(!b_vec);
    let batch_of = |s: &[i64], b: &TileBox| -> TileBox {
        let r = s.len().saturating_sub(2);
        (0..r)
            .map(|k| {
                let o = k + batch - r;
                if s[k] == 1 && out_shape[o] != 1 {
                    (0, 1)
                } else {
                    b[o]
                }
            })
            .collect()
    };
    let k = *a.last().unwrap_or(&1);
    let ra = n.map(&|b| {
        if a_vec {
            return vec![vec![(0, k)]];
        }
        let mut x = batch_of(a, b);
        x.push(b[batch]);
        x.push((0, k));
        vec![x]
    });
    let rb = n.map(&|b| {
        if b_vec {
            return vec![vec![(0, k)]];
        }
        let nn = b[out_shape.len() - 1];
        let mut x = batch_of(bs, b);
        if tb {
            x.extend([nn, (0, k)]);
        } else {
            x.extend([(0, k), nn]);
        }
        vec![x]
    });
    vec![Some(ra), Some(rb)]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::ElemType;

    fn t(shape: &[i64], elem: ElemType, f: impl Fn(usize) -> f64) -> Tensor {
        Tensor::from_fn(TensorType::new(shape.to_vec(), elem), |i| {
            if elem.is_float() {
                Scalar::F(f(i))
            } else {
                Scalar::I(f(i) as i64)
            }
        })
    }

    /// A product restricted to boxes equals the whole product there, and is poison
    /// elsewhere: the simulator computes one task's tile this way.
    #[test]
    fn a_product_restricted_to_boxes_equals_the_whole_there_and_is_poison_elsewhere() {
        let region: Region = vec![vec![(1, 2), (0, 2), (3, 5)], vec![(0, 1), (2, 3), (0, 1)]];
        for (elem, transpose_b) in [
            (ElemType::F32, true),
            (ElemType::F32, false),
            (ElemType::F64, true),
            (ElemType::I64, false),
        ] {
            let a = t(&[2, 3, 4], elem, |i| (i as f64 * 0.37).sin() * 3.0);
            let bs: &[i64] = if transpose_b { &[5, 4] } else { &[4, 5] };
            let b = t(bs, elem, |i| (i as f64 * 0.11).cos() * 2.0);
            let ty = TensorType::new(vec![2, 3, 5], elem);
            let whole = matmul(&a, &b, transpose_b, false, ty.clone(), None).unwrap();
            let part = matmul(&a, &b, transpose_b, false, ty.clone(), Some(&region)).unwrap();
            let mut inside = vec![false; whole.len()];
            for bx in &region {
                for (lo, hi) in crate::tiling::flat_runs(&ty.shape, bx) {
                    (lo as usize..hi as usize).for_each(|i| inside[i] = true);
                }
            }
            assert_eq!(inside.iter().filter(|&&x| x).count(), 2 * 2 + 1);
            for (i, &is_in) in inside.iter().enumerate() {
                match (is_in, elem.is_float()) {
                    (true, _) => assert_eq!(part.get(i), whole.get(i), "{elem} element {i}"),
                    (false, true) => assert!(part.f(i).is_nan(), "{elem} element {i}"),
                    (false, false) => assert_eq!(part.get(i), Scalar::I(0), "element {i}"),
                }
            }
        }
    }

    /// A `tg.matmul_acc`'s split-K tiles hold their K range's part of the sum (no acc) at
    /// their rows; the parts over a cut of K add up to the product, and a row tile is acc
    /// plus the product.
    #[test]
    fn split_k_parts_add_up_to_the_product_and_row_tiles_include_acc() {
        let elem = ElemType::F32;
        let x = t(&[12], elem, |i| (i as f64 * 0.37).sin() * 3.0);
        let w = t(&[5, 12], elem, |i| (i as f64 * 0.11).cos() * 2.0);
        let acc = t(&[5], elem, |i| i as f64 - 1.5);
        let ty = TensorType::new(vec![5], elem);
        let product = matmul(&x, &w, true, false, ty.clone(), None).unwrap();
        let whole = matmul_acc(&x, &w, &acc, ty.clone(), None).unwrap();
        let rows: Region = vec![vec![(1, 3)]];
        let row_tile = matmul_acc(&x, &w, &acc, ty.clone(), Some(&rows)).unwrap();
        let mut sum = [0f64; 5];
        for (k0, k1) in [(0, 5), (5, 12)] {
            let part: Region = vec![vec![(k0, k1), (1, 4)]];
            let p = matmul_acc(&x, &w, &acc, ty.clone(), Some(&part)).unwrap();
            assert!(p.f(0).is_nan() && p.f(4).is_nan(), "rows outside the tile");
            for (n, s) in sum.iter_mut().enumerate().take(4).skip(1) {
                *s += p.f(n);
            }
        }
        // (Each result is stored as f32: sums of parts agree to its rounding.)
        let close = |a: f64, b: f64| (a - b).abs() <= 1e-6 * b.abs().max(1.0);
        for n in 0..5 {
            assert!(close(whole.f(n), acc.f(n) + product.f(n)), "row {n}");
        }
        for (n, &s) in sum.iter().enumerate().take(4).skip(1) {
            assert!(close(s, product.f(n)), "row {n}: {s} {}", product.f(n));
        }
        assert_eq!(row_tile.f(2), whole.f(2));
        assert!(row_tile.f(0).is_nan() && row_tile.f(3).is_nan());
        assert!(infer_matmul_acc(
            &[
                Type::tensor(vec![12], elem),
                Type::tensor(vec![12, 5], elem),
                Type::tensor(vec![5], elem)
            ],
            &Attrs::new()
        )
        .is_err());
    }

    /// A split-K part of an `act_q8` sum whose K range starts on a block rounds the blocks
    /// the whole x rounds: a slice's rounding is the rounding's slice. K must be whole blocks.
    #[test]
    fn act_q8_parts_round_their_own_blocks() {
        let elem = ElemType::F32;
        let x = t(&[128], elem, |i| {
            (i as f64 * 0.29).sin() * (1.0 + i as f64 / 7.0)
        });
        let whole = round_q8_vector(&x).unwrap();
        for (k0, k1) in [(0, 32), (32, 96), (96, 128)] {
            let part = t(&[k1 - k0], elem, |i| x.f(k0 as usize + i));
            let r = round_q8_vector(&part).unwrap();
            for i in 0..(k1 - k0) as usize {
                assert_eq!(
                    r.f(i),
                    whole.f(k0 as usize + i),
                    "K {k0}..{k1}, element {i}"
                );
            }
        }
        let q8 = [("act_q8", crate::attr::Attr::Bool(true))]
            .into_iter()
            .collect();
        let types = |k: i64| {
            [
                Type::tensor(vec![k], elem),
                Type::tensor(vec![5, k], elem),
                Type::tensor(vec![5], elem),
            ]
        };
        assert!(infer_matmul_acc(&types(64), &q8).is_ok());
        let e = infer_matmul_acc(&types(48), &q8).unwrap_err();
        assert!(e.contains("blocks of 32"), "{e}");
    }

    /// `act_q8` multiplies the rounded activation: the same as rounding `a` first, and
    /// different from the plain product.
    #[test]
    fn act_q8_multiplies_the_rounded_activation() {
        let elem = ElemType::F32;
        let a = t(&[2, 64], elem, |i| (i as f64 * 0.37).sin() * 3.0);
        let b = t(&[3, 64], elem, |i| (i as f64 * 0.11).cos() * 2.0);
        let ty = TensorType::new(vec![2, 3], elem);
        let q = matmul(&a, &b, true, true, ty.clone(), None).unwrap();
        let x: Vec<f32> = (0..a.len()).map(|i| a.f(i) as f32).collect();
        let r = crate::quant::round_q8(&x, 64).unwrap();
        let ar = t(&[2, 64], elem, |i| r[i]);
        let want = matmul(&ar, &b, true, false, ty.clone(), None).unwrap();
        let plain = matmul(&a, &b, true, false, ty, None).unwrap();
        for i in 0..q.len() {
            // The rounded tensor holds f32 values: within f32 rounding of the f64 ones.
            assert!((q.f(i) - want.f(i)).abs() <= 1e-5 * want.f(i).abs().max(1.0));
            assert!(
                (q.f(i) - plain.f(i)).abs() > 1e-6,
                "element {i} not rounded"
            );
        }
        assert!(infer_matmul(
            &[
                Type::tensor(vec![1, 48], elem),
                Type::tensor(vec![3, 48], elem)
            ],
            &[
                ("transpose_b", crate::attr::Attr::Bool(true)),
                ("act_q8", crate::attr::Attr::Bool(true))
            ]
            .into_iter()
            .collect()
        )
        .is_err());
    }
}
