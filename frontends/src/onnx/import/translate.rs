//! One ONNX node into `tg` ops: [`Importer::translate`] dispatches by op family, each
//! family a method of its own, and the helpers that compute their shapes.

use super::*;

/// The shape a Reshape of `ty` to `spec` gives: 0 copies the input's dimension (unless
/// `allow_zero`), one -1 takes what is left.
fn reshape_target(ty: &TensorType, spec: &[i64], allow_zero: bool) -> Result<Vec<i64>> {
    let mut shape = Vec::new();
    let mut infer_at = None;
    for (i, &d) in spec.iter().enumerate() {
        match d {
            0 if !allow_zero => shape.push(
                *ty.shape
                    .get(i)
                    .ok_or_else(|| OnnxError::new("shape 0 copies a dimension the input lacks"))?,
            ),
            -1 if infer_at.is_none() => {
                infer_at = Some(i);
                shape.push(1);
            }
            d if d >= 0 => shape.push(d),
            _ => return err(format!("bad target shape {spec:?}")),
        }
    }
    // Products that overflow are as wrong as products that differ.
    let product = |s: &[i64]| s.iter().try_fold(1i64, |p, &d| p.checked_mul(d));
    let cannot = || err(format!("cannot reshape {ty} into {spec:?}"));
    if let Some(i) = infer_at {
        let total = ty.num_elements() as i64;
        match product(&shape) {
            Some(known) if known != 0 && total % known == 0 => shape[i] = total / known,
            _ => return cannot(),
        }
    }
    if product(&shape).is_none_or(|p| p as u64 != ty.num_elements()) {
        return cannot();
    }
    Ok(shape)
}

/// The shape of `ty` without `axes` (without all its 1s when there are no axes).
fn squeezed(ty: &TensorType, axes: Option<Vec<i64>>) -> Result<Vec<i64>> {
    let shape = &ty.shape;
    let r = shape.len();
    let axes: Vec<usize> = match axes {
        Some(ax) => ax.iter().map(|&v| axis(v, r)).collect::<Result<_>>()?,
        None => (0..r).filter(|&d| shape[d] == 1).collect(),
    };
    no_repeated_axis("Squeeze", &axes)?;
    if axes.iter().any(|&d| shape[d] != 1) {
        return err(format!("cannot squeeze a dimension that is not 1 in {ty}"));
    }
    Ok(shape
        .iter()
        .enumerate()
        .filter(|(d, _)| !axes.contains(d))
        .map(|(_, &n)| n)
        .collect())
}

/// ONNX forbids an axis twice in Squeeze's and Unsqueeze's axes (negative ones count as
/// the axis they name).
fn no_repeated_axis(op: &str, axes: &[usize]) -> Result<()> {
    match axes
        .iter()
        .enumerate()
        .find(|&(i, d)| axes[..i].contains(d))
    {
        Some((_, d)) => err(format!("{op}: axis {d} is given twice in axes {axes:?}")),
        None => Ok(()),
    }
}

/// `shape` with a 1 inserted at each of `axes` (axes of the result).
fn unsqueezed(shape: &[i64], axes: &[i64]) -> Result<Vec<i64>> {
    let mut shape = shape.to_vec();
    let r = shape.len() + axes.len();
    let mut axes: Vec<usize> = axes.iter().map(|&v| axis(v, r)).collect::<Result<_>>()?;
    // A repeated axis would insert fewer 1s than the rank counts (and past the end).
    no_repeated_axis("Unsqueeze", &axes)?;
    axes.sort();
    for d in axes {
        shape.insert(d, 1);
    }
    Ok(shape)
}

/// A Slice's (offsets, sizes, strides) over `shape`: bounds clamped as ONNX does, for
/// positive and negative steps.
fn slice_window(
    shape: &[i64],
    starts: &[i64],
    ends: &[i64],
    axes: &[usize],
    steps: &[i64],
) -> Result<(Vec<i64>, Vec<i64>, Vec<i64>)> {
    if ends.len() != starts.len() || axes.len() != starts.len() || steps.len() != starts.len() {
        return err("starts, ends, axes and steps differ in length");
    }
    let r = shape.len();
    let mut offsets = vec![0i64; r];
    let mut sizes = shape.to_vec();
    let mut strides = vec![1i64; r];
    let mut seen = vec![false; r];
    for k in 0..starts.len() {
        let (d, step) = (axes[k], steps[k]);
        if d >= r {
            return err(format!("slice axis {d} is out of range for rank {r}"));
        }
        if std::mem::replace(&mut seen[d], true) {
            return err(format!("slice axis {d} is given twice"));
        }
        let dim = shape[d];
        if step == 0 {
            return err("a slice step cannot be 0");
        }
        let norm = |v: i64| if v < 0 { v.saturating_add(dim) } else { v };
        let (mut s, mut e) = (norm(starts[k]), norm(ends[k]));
        // Counts in i128: a step near i64::MIN or MAX must not overflow.
        let n = if dim == 0 {
            // An empty axis stays empty whatever the bounds and the direction.
            0
        } else if step > 0 {
            s = s.clamp(0, dim);
            e = e.clamp(0, dim);
            let step = step as i128;
            ((e - s) as i128 + step - 1).div_euclid(step).max(0) as i64
        } else {
            s = s.clamp(0, dim - 1);
            e = e.clamp(-1, dim - 1);
            let step = -(step as i128);
            ((s - e) as i128 + step - 1).div_euclid(step).max(0) as i64
        };
        offsets[d] = if n > 0 { s } else { 0 };
        sizes[d] = n;
        strides[d] = step;
    }
    Ok((offsets, sizes, strides))
}

/// A Constant node's value, from whichever of its value attributes it has.
fn constant_value(node: &NodeProto) -> Result<Tensor> {
    let t = if let Some(t) = attr(node, "value").and_then(|a| a.t.as_ref()) {
        let raw = decode_tensor(t, None)?;
        Tensor::from_raw(&raw, &TensorType::new(raw.shape.clone(), raw.elem))?
    } else if let Some(f) = attr_f(node, "value_float") {
        Tensor::from_fn(TensorType::new([], ElemType::F32), |_| {
            mkc_ir::dialect::tg::elementwise::Scalar::F(f)
        })
    } else if let Some(a) = attr(node, "value_floats") {
        let v = a.floats.clone();
        Tensor::from_fn(TensorType::new([v.len() as i64], ElemType::F32), |i| {
            mkc_ir::dialect::tg::elementwise::Scalar::F(v[i] as f64)
        })
    } else if let Some(i) = attr(node, "value_int").and_then(|a| a.i) {
        Tensor::from_fn(TensorType::new([], ElemType::I64), |_| {
            mkc_ir::dialect::tg::elementwise::Scalar::I(i)
        })
    } else if let Some(a) = attr(node, "value_ints") {
        let v = a.ints.clone();
        Tensor::from_fn(TensorType::new([v.len() as i64], ElemType::I64), |i| {
            mkc_ir::dialect::tg::elementwise::Scalar::I(v[i])
        })
    } else {
        return Err(OnnxError {
            unsupported_dtype: true,
            message: "Constant: only tensor, float(s) and int(s) values are supported".into(),
        });
    };
    Ok(t)
}

impl Importer<'_> {
    /// One node's tg ops: the op families each have a method of their own.
    pub(super) fn translate(&mut self, op: &str, node: &NodeProto) -> Result<Vec<Val>> {
        match op {
            "Identity" => Ok(vec![self.req(node, 0)?]),
            "Add" | "Sub" | "Mul" | "Div" | "Equal" | "Less" | "LessOrEqual" | "Greater"
            | "GreaterOrEqual" | "And" | "Or" | "Pow" | "Max" | "Min" | "Sum" | "Where" => {
                self.binary(op, node)
            }
            "Neg" | "Abs" | "Exp" | "Log" | "Sqrt" | "Reciprocal" | "Tanh" | "Sigmoid" | "Relu"
            | "Erf" | "Cos" | "Sin" | "IsNaN" | "Not" | "Gelu" | "Swish" | "Mish" | "HardSwish"
            | "Clip" => self.unary(op, node),
            "Cast" => self.cast_node(node),
            "MatMul" | "Gemm" => self.matmul(op, node),
            "Softmax" | "ReduceMean" | "ReduceSum" | "ReduceMax" | "ReduceMin"
            | "ReduceSumSquare" | "ArgMax" => self.reduction(op, node),
            "LayerNormalization" | "RMSNormalization" => self.normalization(op, node),
            "Transpose" | "Reshape" | "Flatten" | "Squeeze" | "Unsqueeze" | "Expand" => {
                self.layout(op, node)
            }
            "Concat" | "Split" | "Slice" | "Gather" | "GatherElements" => self.selection(op, node),
            "Range" | "Constant" | "ConstantOfShape" | "Shape" => self.known_value(op, node),
            "Trilu" => self.trilu(node),
            "Pad" => self.pad(node),
            "SplitToSequence" | "SequenceAt" | "SequenceConstruct" | "SequenceEmpty"
            | "SequenceInsert" | "SequenceLength" | "ConcatFromSequence" | "Optional"
            | "OptionalGetElement" | "OptionalHasElement" => Err(OnnxError {
                unsupported_dtype: true,
                message: format!(
                    "{op} works on sequence or optional types, which are not supported"
                ),
            }),
            "RotaryEmbedding" => self.rotary(node),
            "Attention" => self.attention(node),
            other => err(format!("unsupported operator {other}")),
        }
    }

    /// Elementwise ops of two or more operands: arithmetic, comparisons, logic, Where.
    fn binary(&mut self, op: &str, node: &NodeProto) -> Result<Vec<Val>> {
        let single = |v: Val| Ok(vec![v]);
        let x = || self.req(node, 0);
        match op {
            "Add" | "Sub" | "Mul" | "Div" | "Equal" | "Less" | "LessOrEqual" | "Greater"
            | "GreaterOrEqual" | "And" | "Or" => {
                let name = match op {
                    "Add" => tg::Add::NAME,
                    "Sub" => tg::Sub::NAME,
                    "Mul" => tg::Mul::NAME,
                    "Div" => tg::Div::NAME,
                    "Equal" => tg::Eq::NAME,
                    "Less" => tg::Lt::NAME,
                    "LessOrEqual" => tg::Le::NAME,
                    "Greater" => tg::Gt::NAME,
                    "GreaterOrEqual" => tg::Ge::NAME,
                    "And" => tg::And::NAME,
                    _ => tg::Or::NAME,
                };
                let (a, b) = (x()?, self.req(node, 1)?);
                single(self.bin(name, a, b)?)
            }
            "Pow" => {
                let (a, b) = (x()?, self.req(node, 1)?);
                let b = self.cast(b, a.ty.elem)?;
                single(self.bin(tg::Pow::NAME, a, b)?)
            }
            "Max" | "Min" | "Sum" => {
                let name = match op {
                    "Max" => tg::Max::NAME,
                    "Min" => tg::Min::NAME,
                    _ => tg::Add::NAME,
                };
                let mut acc = x()?;
                for i in 1..node.input.len() {
                    if let Some(v) = self.input(node, i)? {
                        acc = self.bin(name, acc, v)?;
                    }
                }
                single(acc)
            }
            "Where" => {
                let (c, a, b) = (x()?, self.req(node, 1)?, self.req(node, 2)?);
                single(self.one(tg::Where::NAME, &[c, a, b], vec![])?)
            }
            other => Err(OnnxError::new(format!(
                "internal error: {other} reached the binary ops"
            ))),
        }
    }

    /// Elementwise ops of one operand; the activations tg lacks are built from its ops.
    fn unary(&mut self, op: &str, node: &NodeProto) -> Result<Vec<Val>> {
        let single = |v: Val| Ok(vec![v]);
        let x = || self.req(node, 0);
        match op {
            "Neg" | "Abs" | "Exp" | "Log" | "Sqrt" | "Reciprocal" | "Tanh" | "Sigmoid" | "Relu"
            | "Erf" | "Cos" | "Sin" | "IsNaN" | "Not" => {
                let name = format!(
                    "tg.{}",
                    match op {
                        "IsNaN" => "isnan".to_string(),
                        o => o.to_lowercase(),
                    }
                );
                single(self.un(&name, x()?)?)
            }
            "Gelu" => {
                let approx = attr_s(node, "approximate").unwrap_or_else(|| "none".into());
                single(self.one(
                    tg::Gelu::NAME,
                    &[x()?],
                    vec![("approximate", Attr::Str(approx))],
                )?)
            }
            "Swish" => {
                let a = x()?;
                let alpha = attr_f(node, "alpha").unwrap_or(1.0);
                let s = self.scalar(alpha, a.ty.elem);
                let ax = self.bin(tg::Mul::NAME, a.clone(), s)?;
                let sg = self.un(tg::Sigmoid::NAME, ax)?;
                single(self.bin(tg::Mul::NAME, a, sg)?)
            }
            "Mish" => {
                let a = x()?;
                let e = self.un(tg::Exp::NAME, a.clone())?;
                let one = self.scalar(1.0, a.ty.elem);
                let p = self.bin(tg::Add::NAME, e, one)?;
                let sp = self.un(tg::Log::NAME, p)?;
                let t = self.un(tg::Tanh::NAME, sp)?;
                single(self.bin(tg::Mul::NAME, a, t)?)
            }
            "HardSwish" => {
                let a = x()?;
                let e = a.ty.elem;
                let (k, half, zero, one) = (
                    self.scalar(1.0 / 6.0, e),
                    self.scalar(0.5, e),
                    self.scalar(0.0, e),
                    self.scalar(1.0, e),
                );
                let t = self.bin(tg::Mul::NAME, a.clone(), k)?;
                let t = self.bin(tg::Add::NAME, t, half)?;
                let t = self.bin(tg::Min::NAME, t, one)?;
                let t = self.bin(tg::Max::NAME, t, zero)?;
                single(self.bin(tg::Mul::NAME, a, t)?)
            }
            "Clip" => {
                let mut a = x()?;
                let e = a.ty.elem;
                let (lo, hi) = if self.opset >= 11 {
                    (self.input(node, 1)?, self.input(node, 2)?)
                } else {
                    let lo = attr_f(node, "min").map(|v| self.scalar(v, e));
                    let hi = attr_f(node, "max").map(|v| self.scalar(v, e));
                    (lo, hi)
                };
                if let Some(lo) = lo {
                    a = self.bin(tg::Max::NAME, a, lo)?;
                }
                if let Some(hi) = hi {
                    a = self.bin(tg::Min::NAME, a, hi)?;
                }
                single(a)
            }
            other => Err(OnnxError::new(format!(
                "internal error: {other} reached the unary ops"
            ))),
        }
    }

    /// Cast; to a minifloat it keeps the node's saturate and round_mode.
    fn cast_node(&mut self, node: &NodeProto) -> Result<Vec<Val>> {
        let to = attr(node, "to")
            .and_then(|a| a.i)
            .ok_or_else(|| OnnxError::new("Cast needs 'to'"))?;
        let elem = elem_of(to as i32)?;
        let a = self.req(node, 0)?;
        if elem.is_minifloat() && a.ty.elem != elem {
            let ty = TensorType::new(a.ty.shape.clone(), elem);
            let mut attrs = vec![("saturate", Attr::Bool(attr_i(node, "saturate", 1) != 0))];
            if let Some(mode) = attr_s(node, "round_mode") {
                attrs.push(("round_mode", Attr::Str(mode)));
            }
            return Ok(vec![self.typed(tg::Cast::NAME, &[a], ty, attrs)?]);
        }
        Ok(vec![self.cast(a, elem)?])
    }

    /// MatMul, and Gemm as a matmul scaled by alpha plus beta times C.
    fn matmul(&mut self, op: &str, node: &NodeProto) -> Result<Vec<Val>> {
        let (mut a, b) = (self.req(node, 0)?, self.req(node, 1)?);
        if op == "MatMul" {
            return Ok(vec![self.one(tg::MatMul::NAME, &[a, b], vec![])?]);
        }
        if attr_i(node, "transA", 0) != 0 {
            a = self.transpose(a, &[1, 0])?;
        }
        let tb = attr_i(node, "transB", 0) != 0;
        let e = a.ty.elem;
        let mut y = self.one(
            tg::MatMul::NAME,
            &[a, b],
            vec![("transpose_b", Attr::Bool(tb))],
        )?;
        let alpha = attr_f(node, "alpha").unwrap_or(1.0);
        if alpha != 1.0 {
            let s = self.scalar(alpha, e);
            y = self.bin(tg::Mul::NAME, y, s)?;
        }
        if let Some(c) = self.input(node, 2)? {
            let beta = attr_f(node, "beta").unwrap_or(1.0);
            let c = if beta != 1.0 {
                let s = self.scalar(beta, e);
                self.bin(tg::Mul::NAME, c, s)?
            } else {
                c
            };
            y = self.bin(tg::Add::NAME, y, c)?;
        }
        Ok(vec![y])
    }

    /// Ops along an axis: softmax, the ReduceX family and ArgMax.
    fn reduction(&mut self, op: &str, node: &NodeProto) -> Result<Vec<Val>> {
        let a = self.req(node, 0)?;
        match op {
            "Softmax" => {
                let ax = axis(attr_i(node, "axis", -1), a.ty.rank())?;
                Ok(vec![self.one(
                    tg::Softmax::NAME,
                    &[a],
                    vec![("axis", i64_attr(ax as i64))],
                )?])
            }
            "ReduceSumSquare" => {
                let sq = self.bin(tg::Mul::NAME, a.clone(), a)?;
                self.reduce(node, tg::ReduceSum::NAME, sq)
            }
            "ArgMax" => {
                let ax = axis(attr_i(node, "axis", 0), a.ty.rank())?;
                Ok(vec![self.one(
                    tg::ArgMax::NAME,
                    &[a],
                    vec![
                        ("axis", i64_attr(ax as i64)),
                        ("keepdims", Attr::Bool(attr_i(node, "keepdims", 1) != 0)),
                        (
                            "select_last_index",
                            Attr::Bool(attr_i(node, "select_last_index", 0) != 0),
                        ),
                    ],
                )?])
            }
            _ => {
                let name = format!(
                    "tg.reduce_{}",
                    op.trim_start_matches("Reduce").to_lowercase()
                );
                self.reduce(node, &name, a)
            }
        }
    }

    /// LayerNormalization (with its optional mean and inverse-std-dev outputs) and
    /// RMSNormalization.
    fn normalization(&mut self, op: &str, node: &NodeProto) -> Result<Vec<Val>> {
        let a = self.req(node, 0)?;
        let ax = axis(attr_i(node, "axis", -1), a.ty.rank())?;
        let eps = attr_f(node, "epsilon").unwrap_or(1e-5);
        let scale = self.req(node, 1)?;
        let attrs = vec![("axis", i64_attr(ax as i64)), ("epsilon", f64_attr(eps))];
        if op == "RMSNormalization" {
            return Ok(vec![self.one(tg::RmsNorm::NAME, &[a, scale], attrs)?]);
        }
        let mut operands = vec![a.clone(), scale];
        if let Some(b) = self.input(node, 2)? {
            operands.push(b);
        }
        let n_out = node
            .output
            .iter()
            .rposition(|o| !o.is_empty())
            .map_or(1, |i| i + 1);
        let stat_elem = if attr_i(node, "stash_type", 1) == 1 {
            ElemType::F32
        } else {
            a.ty.elem
        };
        let stat_shape: Vec<i64> = (0..a.ty.rank())
            .map(|d| if d < ax { a.ty.shape[d] } else { 1 })
            .collect();
        let mut tys = vec![a.ty.clone()];
        for _ in 1..n_out {
            tys.push(TensorType::new(stat_shape.clone(), stat_elem));
        }
        self.emit(tg::LayerNorm::NAME, &operands, Some(tys), attrs)
    }

    /// Ops that rearrange or re-view all of a tensor: Transpose, Reshape, Flatten,
    /// Squeeze/Unsqueeze, Expand.
    fn layout(&mut self, op: &str, node: &NodeProto) -> Result<Vec<Val>> {
        let a = self.req(node, 0)?;
        let y = match op {
            "Transpose" => {
                let perm = attr_ints(node, "perm")
                    .unwrap_or_else(|| (0..a.ty.rank() as i64).rev().collect());
                self.transpose(a, &perm)?
            }
            "Reshape" => {
                let spec = self
                    .const_ints(node, 1, "shape")?
                    .ok_or_else(|| OnnxError::new("Reshape needs a shape"))?;
                let allow_zero = attr_i(node, "allowzero", 0) != 0;
                let shape = reshape_target(&a.ty, &spec, allow_zero)?;
                self.reshape(a, shape)?
            }
            "Flatten" => {
                let r = a.ty.rank();
                let ax = attr_i(node, "axis", 1);
                let ax = if ax < 0 { ax + r as i64 } else { ax } as usize;
                if ax > r {
                    return err(format!("axis {ax} is out of range for rank {r}"));
                }
                let outer: i64 = a.ty.shape[..ax].iter().product();
                let inner: i64 = a.ty.shape[ax..].iter().product();
                self.reshape(a, vec![outer, inner])?
            }
            "Squeeze" | "Unsqueeze" => {
                let axes = if node.input.len() > 1 {
                    self.const_ints(node, 1, "axes")?
                } else {
                    attr_ints(node, "axes")
                };
                let shape = if op == "Squeeze" {
                    squeezed(&a.ty, axes)?
                } else {
                    let axes = axes.ok_or_else(|| OnnxError::new("Unsqueeze needs axes"))?;
                    unsqueezed(&a.ty.shape, &axes)?
                };
                self.reshape(a, shape)?
            }
            "Expand" => {
                let shape = self
                    .const_ints(node, 1, "shape")?
                    .ok_or_else(|| OnnxError::new("Expand needs a shape"))?;
                let out = broadcast_shapes(&a.ty.shape, &shape).ok_or_else(|| {
                    OnnxError::new(format!("cannot expand {} to {shape:?}", a.ty))
                })?;
                self.expand(a, out)?
            }
            other => {
                return Err(OnnxError::new(format!(
                    "internal error: {other} reached the layout ops"
                )))
            }
        };
        Ok(vec![y])
    }

    /// Ops that pick or join parts of tensors: Concat, Split, Slice, Gather, GatherElements.
    fn selection(&mut self, op: &str, node: &NodeProto) -> Result<Vec<Val>> {
        let single = |v: Val| Ok(vec![v]);
        let x = || self.req(node, 0);
        match op {
            "Concat" => {
                let vals: Vec<Val> = (0..node.input.len())
                    .filter_map(|i| self.input(node, i).transpose())
                    .collect::<Result<_>>()?;
                let first = vals
                    .first()
                    .ok_or_else(|| OnnxError::new("Concat needs inputs"))?;
                let ax = axis(attr_i(node, "axis", 0), first.ty.rank())?;
                single(self.one(tg::Concat::NAME, &vals, vec![("axis", i64_attr(ax as i64))])?)
            }
            "Split" => {
                let a = x()?;
                let ax = axis(attr_i(node, "axis", 0), a.ty.rank())?;
                let dim = a.ty.shape[ax];
                let n = node.output.len() as i64;
                let sizes = match (self.input(node, 1)?, attr_ints(node, "split")) {
                    (Some(_), _) => self.const_ints(node, 1, "split sizes")?.unwrap_or_default(),
                    (None, Some(s)) if !s.is_empty() => s,
                    _ => {
                        let parts = attr(node, "num_outputs").and_then(|a| a.i).unwrap_or(n);
                        if parts < 1 || parts != n {
                            return err(format!("Split into {parts} parts has {n} outputs"));
                        }
                        let chunk = (dim + parts - 1) / parts;
                        (0..parts)
                            .map(|k| chunk.min(dim - k * chunk).max(0))
                            .collect()
                    }
                };
                if sizes.len() as i64 != n
                    || sizes.iter().any(|&s| s < 0)
                    || sizes.iter().try_fold(0i64, |t, &s| t.checked_add(s)) != Some(dim)
                {
                    return err(format!(
                        "Split sizes {sizes:?} do not cut axis {ax} of {} (length {dim}) into {n} outputs",
                        a.ty
                    ));
                }
                self.emit(
                    tg::Split::NAME,
                    &[a],
                    None,
                    vec![("axis", i64_attr(ax as i64)), ("sizes", ints(&sizes))],
                )
            }
            "Slice" => {
                let a = x()?;
                let starts = self.const_ints(node, 1, "starts")?.unwrap_or_default();
                let ends = self.const_ints(node, 2, "ends")?.unwrap_or_default();
                let r = a.ty.rank();
                let axes = match self.const_ints(node, 3, "axes")? {
                    Some(ax) => ax.iter().map(|&v| axis(v, r)).collect::<Result<Vec<_>>>()?,
                    None => (0..starts.len()).collect(),
                };
                let steps = self
                    .const_ints(node, 4, "steps")?
                    .unwrap_or_else(|| vec![1; starts.len()]);
                let (offsets, sizes, strides) =
                    slice_window(&a.ty.shape, &starts, &ends, &axes, &steps)?;
                single(self.one(
                    tg::Slice::NAME,
                    &[a],
                    vec![
                        ("offsets", ints(&offsets)),
                        ("sizes", ints(&sizes)),
                        ("strides", ints(&strides)),
                    ],
                )?)
            }
            "Gather" => {
                let (d, i) = (x()?, self.req(node, 1)?);
                let ax = axis(attr_i(node, "axis", 0), d.ty.rank())?;
                single(self.one(
                    tg::Gather::NAME,
                    &[d, i],
                    vec![("axis", i64_attr(ax as i64))],
                )?)
            }
            "GatherElements" => {
                let (d, i) = (x()?, self.req(node, 1)?);
                let ax = axis(attr_i(node, "axis", 0), d.ty.rank())?;
                single(self.one(
                    tg::GatherElements::NAME,
                    &[d, i],
                    vec![("axis", i64_attr(ax as i64))],
                )?)
            }
            other => Err(OnnxError::new(format!(
                "internal error: {other} reached the selection ops"
            ))),
        }
    }

    /// Ops whose value is known at import: Range, Constant, ConstantOfShape, Shape.
    fn known_value(&mut self, op: &str, node: &NodeProto) -> Result<Vec<Val>> {
        let v = match op {
            "Range" => {
                let get = |s: &Self, i: usize, w: &str| -> Result<Rc<Tensor>> {
                    s.const_input(node, i, w)?
                        .ok_or_else(|| OnnxError::new(format!("Range needs {w}")))
                };
                let (start, limit, delta) = (
                    get(self, 0, "start")?,
                    get(self, 1, "limit")?,
                    get(self, 2, "delta")?,
                );
                let elem = start.ty.elem;
                let (s, l, d) = (start.get(0), limit.get(0), delta.get(0));
                let n = ((l.f() - s.f()) / d.f()).ceil().max(0.0) as i64;
                let (sa, da) = if elem.is_float() {
                    (Attr::Float(F64(s.f()), elem), Attr::Float(F64(d.f()), elem))
                } else {
                    (Attr::Int(s.i(), elem), Attr::Int(d.i(), elem))
                };
                self.typed(
                    tg::Iota::NAME,
                    &[],
                    TensorType::new([n], elem),
                    vec![("start", sa), ("step", da)],
                )?
            }
            "Constant" => {
                let t = constant_value(node)?;
                self.konst(t)
            }
            "ConstantOfShape" => {
                let shape = self
                    .const_ints(node, 0, "shape")?
                    .ok_or_else(|| OnnxError::new("ConstantOfShape needs a shape"))?;
                let (elem, v) = match attr(node, "value").and_then(|a| a.t.as_ref()) {
                    Some(t) => {
                        let raw = decode_tensor(t, None)?;
                        let one =
                            Tensor::from_raw(&raw, &TensorType::new(raw.shape.clone(), raw.elem))?;
                        (raw.elem, one.get(0))
                    }
                    None => (
                        ElemType::F32,
                        mkc_ir::dialect::tg::elementwise::Scalar::F(0.0),
                    ),
                };
                self.new_const(TensorType::new(shape, elem), |_| v)?
            }
            "Shape" => {
                let a = self.req(node, 0)?;
                let r = a.ty.rank() as i64;
                let clampi = |v: i64| (if v < 0 { v + r } else { v }).clamp(0, r) as usize;
                let (s, e) = (
                    clampi(attr_i(node, "start", 0)),
                    clampi(attr_i(node, "end", r)),
                );
                let dims: Vec<i64> = a.ty.shape[s..e.max(s)].to_vec();
                self.new_const(TensorType::new([dims.len() as i64], ElemType::I64), |i| {
                    mkc_ir::dialect::tg::elementwise::Scalar::I(dims[i])
                })?
            }
            other => {
                return Err(OnnxError::new(format!(
                    "internal error: {other} reached the known-value ops"
                )))
            }
        };
        Ok(vec![v])
    }

    /// Trilu as where(mask, x, 0), the mask a constant over the last two dimensions.
    fn trilu(&mut self, node: &NodeProto) -> Result<Vec<Val>> {
        let a = self.req(node, 0)?;
        let k = self.const_ints(node, 1, "k")?.map_or(0, |v| v[0]);
        let upper = attr_i(node, "upper", 1) != 0;
        let r = a.ty.rank();
        if r < 2 {
            return err("Trilu needs rank >= 2");
        }
        let (n, m) = (a.ty.shape[r - 2], a.ty.shape[r - 1]);
        let mask = Tensor::from_fn(TensorType::new([n, m], ElemType::I1), |i| {
            let (row, col) = ((i as i64) / m.max(1), (i as i64) % m.max(1));
            let keep = if upper {
                col - row >= k
            } else {
                col - row <= k
            };
            mkc_ir::dialect::tg::elementwise::Scalar::I(keep as i64)
        });
        let mask = self.konst(mask);
        let zero = self.scalar(0.0, a.ty.elem);
        Ok(vec![self.one(tg::Where::NAME, &[mask, a, zero], vec![])?])
    }

    /// ReduceX over the node's axes (input #1 from opset 18, else the attribute).
    fn reduce(&mut self, node: &NodeProto, name: &str, a: Val) -> Result<Vec<Val>> {
        let axes = if node.input.len() > 1 {
            self.const_ints(node, 1, "axes")?
        } else {
            attr_ints(node, "axes")
        };
        let axes = axes.unwrap_or_default();
        if axes.is_empty() && attr_i(node, "noop_with_empty_axes", 0) != 0 {
            return Ok(vec![a]);
        }
        let rank = a.ty.rank();
        let axes: Vec<i64> = if axes.is_empty() {
            (0..rank as i64).collect()
        } else {
            axes.iter()
                .map(|&v| axis(v, rank).map(|v| v as i64))
                .collect::<Result<_>>()?
        };
        let keep = attr_i(node, "keepdims", 1) != 0;
        Ok(vec![self.one(
            name,
            &[a],
            vec![("axes", ints(&axes)), ("keepdims", Attr::Bool(keep))],
        )?])
    }

    /// Pad in constant mode: crops (negative pads) by slicing, then concatenates fill blocks.
    fn pad(&mut self, node: &NodeProto) -> Result<Vec<Val>> {
        let mut a = self.req(node, 0)?;
        let mode = attr_s(node, "mode").unwrap_or_else(|| "constant".into());
        if mode != "constant" {
            return err(format!("mode '{mode}' is not supported (constant only)"));
        }
        let pads = self
            .const_ints(node, 1, "pads")?
            .ok_or_else(|| OnnxError::new("Pad needs pads"))?;
        let r = a.ty.rank();
        let axes: Vec<usize> = match self.const_ints(node, 3, "axes")? {
            Some(ax) => ax.iter().map(|&v| axis(v, r)).collect::<Result<_>>()?,
            None => (0..r).collect(),
        };
        if pads.len() != 2 * axes.len() {
            return err(format!("{} pads for {} axes", pads.len(), axes.len()));
        }
        let fill = match self.const_input(node, 2, "constant_value")? {
            Some(t) => t.get(0),
            None => mkc_ir::dialect::tg::elementwise::Scalar::F(0.0),
        };
        for (k, &d) in axes.iter().enumerate() {
            let (begin, end) = (pads[k], pads[axes.len() + k]);
            if begin < 0 || end < 0 {
                let dim = a.ty.shape[d];
                // Saturating: a pad of i64::MIN crops "everything", never overflows.
                let (lo, hi) = (begin.saturating_neg().max(0), end.saturating_neg().max(0));
                if lo.saturating_add(hi) > dim {
                    return err("negative pads crop more than the whole dimension");
                }
                let mut offsets = vec![0; r];
                let mut sizes = a.ty.shape.clone();
                offsets[d] = lo;
                sizes[d] = dim - lo - hi;
                a = self.one(
                    tg::Slice::NAME,
                    &[a],
                    vec![
                        ("offsets", ints(&offsets)),
                        ("sizes", ints(&sizes)),
                        ("strides", ints(&vec![1; r])),
                    ],
                )?;
            }
            let mut parts = Vec::new();
            for (n, before) in [(begin.max(0), true), (end.max(0), false)] {
                if n == 0 {
                    continue;
                }
                let mut shape = a.ty.shape.clone();
                shape[d] = n;
                let block = self.new_const(TensorType::new(shape, a.ty.elem), |_| fill)?;
                parts.push((before, block));
            }
            if !parts.is_empty() {
                let mut list: Vec<Val> =
                    parts.iter().filter(|p| p.0).map(|p| p.1.clone()).collect();
                list.push(a.clone());
                list.extend(parts.iter().filter(|p| !p.0).map(|p| p.1.clone()));
                a = self.one(tg::Concat::NAME, &list, vec![("axis", i64_attr(d as i64))])?;
            }
        }
        Ok(vec![a])
    }

    fn rotary(&mut self, node: &NodeProto) -> Result<Vec<Val>> {
        let x = self.req(node, 0)?;
        let (mut cos, mut sin) = (self.req(node, 1)?, self.req(node, 2)?);
        if let Some(pos) = self.input(node, 3)? {
            cos = self.one(
                tg::Gather::NAME,
                &[cos, pos.clone()],
                vec![("axis", i64_attr(0))],
            )?;
            sin = self.one(tg::Gather::NAME, &[sin, pos], vec![("axis", i64_attr(0))])?;
        }
        let interleaved = attr_i(node, "interleaved", 0) != 0;
        let r = *cos
            .ty
            .shape
            .last()
            .ok_or_else(|| OnnxError::new("cos_cache needs rank >= 1"))?;
        if cos.ty.rank() != 3 {
            return err(format!(
                "cos/sin must be [batch, seq, rotary_dim/2] after gathering, got {}",
                cos.ty
            ));
        }
        let (b, s) = (cos.ty.shape[0], cos.ty.shape[1]);
        let rot = attr_i(node, "rotary_embedding_dim", 0);
        if rot != 0 && rot != 2 * r {
            return err(format!(
                "rotary_embedding_dim {rot} does not match cos/sin of width {r}"
            ));
        }
        let attrs = vec![("interleaved", Attr::Bool(interleaved))];
        match x.ty.rank() {
            4 => {
                let cos = self.reshape(cos, vec![b, 1, s, r])?;
                let sin = self.reshape(sin, vec![b, 1, s, r])?;
                Ok(vec![self.one(tg::Rope::NAME, &[x, cos, sin], attrs)?])
            }
            3 => {
                let heads = attr_i(node, "num_heads", 0);
                if heads <= 0 || x.ty.shape[2] % heads != 0 {
                    return err("3-D input needs num_heads dividing the hidden size");
                }
                let shape3 = x.ty.shape.clone();
                let x4 = self.reshape(x, vec![shape3[0], shape3[1], heads, shape3[2] / heads])?;
                let cos = self.reshape(cos, vec![b, s, 1, r])?;
                let sin = self.reshape(sin, vec![b, s, 1, r])?;
                let y = self.one(tg::Rope::NAME, &[x4, cos, sin], attrs)?;
                Ok(vec![self.reshape(y, shape3)?])
            }
            n => err(format!("input of rank {n} is not supported (3 or 4)")),
        }
    }

    /// ONNX Attention (opsets 23-25), decomposed into tg ops following the reference
    /// implementation: scaled QK^T (sqrt(scale) on both sides), softcap, additive bias from
    /// the mask, causal (bottom-right aligned) and sliding-window limits, softmax with
    /// fully-masked rows set to 0, then PV.
    fn attention(&mut self, node: &NodeProto) -> Result<Vec<Val>> {
        let (mut q, mut k, mut v) = (self.req(node, 0)?, self.req(node, 1)?, self.req(node, 2)?);
        let mask = self.input(node, 3)?;
        let (past_k, past_v) = (self.input(node, 4)?, self.input(node, 5)?);
        let nonpad = self.input(node, 6)?;
        let rank = q.ty.rank();
        if !(rank == 3 || rank == 4) || k.ty.rank() != rank || v.ty.rank() != rank {
            return err(format!(
                "Q, K and V must all be 3-D or all 4-D; got {}, {} and {}",
                q.ty, k.ty, v.ty
            ));
        }
        for p in [&past_k, &past_v].into_iter().flatten() {
            if p.ty.rank() != 4 {
                return err(format!("past key/value must be 4-D, got {}", p.ty));
            }
        }
        if past_k.is_some() != past_v.is_some() {
            return err("past_key and past_value must be given together");
        }
        if mask.as_ref().is_some_and(|m| m.ty.rank() == 0) {
            return err("the attention mask must have rank >= 1");
        }
        if nonpad
            .as_ref()
            .is_some_and(|n| n.ty.num_elements() != q.ty.shape[0] as u64)
        {
            return err("nonpad_kv_seqlen must hold one length per batch");
        }
        let rank3 = q.ty.rank() == 3;
        let e = q.ty.elem;
        if rank3 {
            let hq = attr_i(node, "q_num_heads", 0);
            let hkv = attr_i(node, "kv_num_heads", 0);
            if hq <= 0 || hkv <= 0 {
                return err("3-D inputs need q_num_heads and kv_num_heads");
            }
            let to4 = |s: &mut Self, t: Val, h: i64| -> Result<Val> {
                let (b, n, hid) = (t.ty.shape[0], t.ty.shape[1], t.ty.shape[2]);
                let t = s.reshape(t, vec![b, n, h, hid / h])?;
                s.transpose(t, &[0, 2, 1, 3])
            };
            q = to4(self, q, hq)?;
            k = to4(self, k, hkv)?;
            v = to4(self, v, hkv)?;
        } else if q.ty.rank() != 4 {
            return err(format!(
                "Q of rank {} is not supported (3 or 4)",
                q.ty.rank()
            ));
        }
        let (batch, hq, sq, dq) = (q.ty.shape[0], q.ty.shape[1], q.ty.shape[2], q.ty.shape[3]);
        let scale = attr_f(node, "scale").unwrap_or(1.0 / (dq as f64).sqrt());
        let sqrt_scale = mkc_ir::attr::round_to(scale.sqrt(), e);
        let past_len = past_k.as_ref().map_or(0, |p| p.ty.shape[2]);
        if let Some(p) = past_k {
            k = self.one(tg::Concat::NAME, &[p, k], vec![("axis", i64_attr(2))])?;
        }
        if let Some(p) = past_v {
            v = self.one(tg::Concat::NAME, &[p, v], vec![("axis", i64_attr(2))])?;
        }
        let (present_k, present_v) = (k.clone(), v.clone());
        let skv = k.ty.shape[2];
        // GQA: repeat each kv head `group` times (head h reads kv head h / group).
        let hkv = k.ty.shape[1];
        if hq != hkv {
            if hkv == 0 || hq % hkv != 0 {
                return err(format!("{hq} query heads cannot share {hkv} kv heads"));
            }
            let g = hq / hkv;
            let rep = |s: &mut Self, t: Val| -> Result<Val> {
                let sh = t.ty.shape.clone();
                let t = s.reshape(t, vec![sh[0], sh[1], 1, sh[2], sh[3]])?;
                let t = s.expand(t, vec![sh[0], sh[1], g, sh[2], sh[3]])?;
                s.reshape(t, vec![sh[0], sh[1] * g, sh[2], sh[3]])
            };
            k = rep(self, k)?;
            v = rep(self, v)?;
        }
        let s = self.scalar(sqrt_scale, e);
        let qs = self.bin(tg::Mul::NAME, q, s.clone())?;
        let ks = self.bin(tg::Mul::NAME, k, s)?;
        let mut qk = self.one(
            tg::MatMul::NAME,
            &[qs, ks],
            vec![("transpose_b", Attr::Bool(true))],
        )?;
        let softcap = attr_f(node, "softcap").unwrap_or(0.0);
        if softcap > 0.0 {
            let c = self.scalar(softcap, e);
            let t = self.bin(tg::Div::NAME, qk, c.clone())?;
            let t = self.un(tg::Tanh::NAME, t)?;
            qk = self.bin(tg::Mul::NAME, t, c)?;
        }
        // The additive bias, [.., sq, skv].
        let mut bias: Option<Val> = None;
        if let Some(m) = mask {
            let pad = skv - m.ty.shape.last().copied().unwrap_or(skv);
            let m = if pad > 0 {
                let mut shape = m.ty.shape.clone();
                *shape.last_mut().expect("rank >= 1") = pad;
                let fill = if m.ty.elem == ElemType::I1 {
                    0.0
                } else {
                    f64::NEG_INFINITY
                };
                let filler = self.new_const(TensorType::new(shape, m.ty.elem), |_| {
                    mkc_ir::dialect::tg::elementwise::Scalar::F(fill)
                })?;
                let r = m.ty.rank() as i64 - 1;
                self.one(tg::Concat::NAME, &[m, filler], vec![("axis", i64_attr(r))])?
            } else {
                m
            };
            let m = if m.ty.elem == ElemType::I1 {
                self.bias_from_bool(m, e)?
            } else {
                self.cast(m, e)?
            };
            bias = Some(m);
        }
        let is_causal = attr_i(node, "is_causal", 0) != 0;
        let left = attr_i(node, "left_window_size", -1);
        let right = attr_i(node, "right_window_size", -1);
        // Per-query frontier offset: past length, or nonpad_kv_seqlen - sq per batch.
        let offset: Option<Val> = match &nonpad {
            Some(n) if past_len == 0 => {
                let n = self.cast(n.clone(), ElemType::I64)?;
                let sqc = self.scalar(sq as f64, ElemType::I64);
                let o = self.bin(tg::Sub::NAME, n, sqc)?;
                Some(self.reshape(o, vec![batch, 1, 1, 1])?)
            }
            _ => None,
        };
        let static_offset = past_len;
        if is_causal || left >= 0 || right >= 0 {
            // diff[i][j] = i + offset - j, as [.., sq, skv]
            let i_idx = self.new_const(TensorType::new([sq, 1], ElemType::I64), |i| {
                mkc_ir::dialect::tg::elementwise::Scalar::I(i as i64 + static_offset)
            })?;
            let j_idx = self.new_const(TensorType::new([1, skv], ElemType::I64), |j| {
                mkc_ir::dialect::tg::elementwise::Scalar::I(j as i64)
            })?;
            let mut p = i_idx;
            if let Some(o) = &offset {
                p = self.bin(tg::Add::NAME, p, o.clone())?;
            }
            let diff = self.bin(tg::Sub::NAME, p, j_idx)?;
            let zero = self.scalar(0.0, ElemType::I64);
            let mut allowed: Option<Val> = None;
            let mut and = |s: &mut Self, c: Val| -> Result<()> {
                allowed = Some(match allowed.take() {
                    Some(a) => s.bin(tg::And::NAME, a, c)?,
                    None => c,
                });
                Ok(())
            };
            if is_causal {
                let c = self.bin(tg::Ge::NAME, diff.clone(), zero.clone())?;
                and(self, c)?;
            }
            if left >= 0 {
                let l = self.scalar(left as f64, ElemType::I64);
                let c = self.bin(tg::Le::NAME, diff.clone(), l)?;
                and(self, c)?;
            }
            if right >= 0 {
                let r = self.scalar(-(right as f64), ElemType::I64);
                let c = self.bin(tg::Ge::NAME, diff.clone(), r)?;
                and(self, c)?;
            }
            let allowed = allowed.expect("one limit applies");
            let lim = self.bias_from_bool(allowed, e)?;
            bias = Some(match bias {
                Some(b) => self.bin(tg::Add::NAME, b, lim)?,
                None => lim,
            });
        }
        if let Some(n) = &nonpad {
            let n = self.cast(n.clone(), ElemType::I64)?;
            let n = self.reshape(n, vec![batch, 1, 1, 1])?;
            let j_idx = self.new_const(TensorType::new([skv], ElemType::I64), |j| {
                mkc_ir::dialect::tg::elementwise::Scalar::I(j as i64)
            })?;
            let valid = self.bin(tg::Lt::NAME, j_idx, n)?;
            let pb = self.bias_from_bool(valid, e)?;
            bias = Some(match bias {
                Some(b) => self.bin(tg::Add::NAME, b, pb)?,
                None => pb,
            });
        }
        let mode = attr_i(node, "qk_matmul_output_mode", 0);
        let mut qk_out = qk.clone();
        let scores = match &bias {
            Some(b) => self.bin(tg::Add::NAME, qk, b.clone())?,
            None => qk,
        };
        if mode == 2 {
            qk_out = scores.clone();
        }
        let last = scores.ty.rank() as i64 - 1;
        let mut probs = self.one(tg::Softmax::NAME, &[scores], vec![("axis", i64_attr(last))])?;
        if let Some(b) = &bias {
            // Rows the bias masks entirely have no attendable key: their weights are 0.
            let bmax = self.one(
                tg::ReduceMax::NAME,
                std::slice::from_ref(b),
                vec![
                    ("axes", ints(&[b.ty.rank() as i64 - 1])),
                    ("keepdims", Attr::Bool(true)),
                ],
            )?;
            let ninf = self.scalar(f64::NEG_INFINITY, e);
            let masked = self.bin(tg::Eq::NAME, bmax, ninf)?;
            let zero = self.scalar(0.0, e);
            probs = self.one(tg::Where::NAME, &[masked, zero, probs], vec![])?;
        }
        if mode == 3 {
            qk_out = probs.clone();
        }
        let mut y = self.one(tg::MatMul::NAME, &[probs, v], vec![])?;
        if rank3 {
            y = self.transpose(y, &[0, 2, 1, 3])?;
            let sh = y.ty.shape.clone();
            y = self.reshape(y, vec![sh[0], sh[1], sh[2] * sh[3]])?;
        }
        Ok(vec![y, present_k, present_v, qk_out])
    }
}
