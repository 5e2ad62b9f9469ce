//! ONNX graph -> `tg` IR, one handler per ONNX op.

use super::proto::{AttributeProto, NodeProto, TensorProto};
use super::{decode_tensor, elem_of, OnnxError, OnnxModel, Result};
use mkc_ir::attr::{Attr, Attrs, F64};
use mkc_ir::dialect::builtin;
use mkc_ir::dialect::tg;
use mkc_ir::dialect::tg::ints;
use mkc_ir::interpret::{self, Eval};
use mkc_ir::tensor::Tensor;
use mkc_ir::types::{broadcast_shapes, MAX_DIM};
use mkc_ir::weights::RawTensor;
use mkc_ir::{BlockId, Body, ElemType, OpId, OpSpec, Registry, TensorType, Type, ValueId};
use std::collections::HashMap;
use std::rc::Rc;

mod translate;

/// How to import.
#[derive(Default)]
pub struct ImportOptions<'a> {
    /// Values of graph inputs, for inputs that ops need at compile time (a Reshape's shape,
    /// a Slice's bounds) and to fix symbolic dimensions. Other inputs stay arguments.
    pub known_inputs: HashMap<String, RawTensor<'a>>,
}

/// Initializers up to this many elements (and all integer ones) are inlined as constants;
/// larger ones, and all external data, become weight arguments.
const INLINE_LIMIT: usize = 1024;
/// Results of constant operands are folded up to this many elements.
const FOLD_LIMIT: u64 = 1 << 16;
/// No tensor may have more elements (2^40: far beyond any model, small enough to compute with).
const MAX_ELEMENTS: u64 = 1 << 40;
/// Constants the importer creates itself (ConstantOfShape, masks) stay below this.
const MAX_CONSTANT: u64 = 1 << 26;

#[derive(Clone)]
struct Val {
    v: ValueId,
    ty: TensorType,
    /// The value, when known at compile time.
    c: Option<Rc<Tensor>>,
}

struct Importer<'a> {
    opts: &'a ImportOptions<'a>,
    registry: Registry,
    body: Body,
    block: BlockId,
    env: HashMap<String, Val>,
    opset: i64,
    /// The node being translated, for messages.
    node: String,
}

fn err<T>(msg: impl Into<String>) -> Result<T> {
    Err(OnnxError::new(msg))
}

/// Imports the model's graph as `@main`.
pub fn import(model: &OnnxModel, opts: &ImportOptions) -> Result<Body> {
    let opset = model.opset();
    if opset < 13 {
        return err(format!(
            "opset {opset} is not supported: mkc needs opset 13 or later"
        ));
    }
    let graph = model.graph();
    let inits: HashMap<&str, &TensorProto> = graph
        .initializer
        .iter()
        .filter_map(|t| Some((t.name.as_deref()?, t)))
        .collect();

    // Signature: graph inputs (that are not initializers), then weight initializers.
    let mut arg_types = Vec::new();
    let mut arg_attrs = Vec::new();
    let mut arg_names = Vec::new();
    for input in &graph.input {
        let name = input.name.clone().unwrap_or_default();
        if inits.contains_key(name.as_str()) {
            continue;
        }
        let tt = input.r#type.as_ref().and_then(|t| t.tensor_type.as_ref()).ok_or_else(|| OnnxError {
            unsupported_dtype: true,
            message: format!("input '{name}' is not a tensor (sequence and optional types are not supported)"),
        })?;
        let elem = elem_of(tt.elem_type.unwrap_or(0)).map_err(|e| OnnxError {
            message: format!("input '{name}': {}", e.message),
            ..e
        })?;
        let known = opts.known_inputs.get(&name);
        let mut shape = Vec::new();
        let dims = tt.shape.as_ref().map(|s| s.dim.as_slice()).unwrap_or(&[]);
        for (i, d) in dims.iter().enumerate() {
            match (d.dim_value, known) {
                (Some(v), _) if v >= 0 && d.dim_param.is_none() => shape.push(v),
                (_, Some(k)) if i < k.shape.len() => shape.push(k.shape[i]),
                _ => {
                    return err(format!(
                        "input '{name}' has a dynamic dimension '{}': mkc needs static shapes (export with fixed sizes)",
                        d.dim_param.clone().unwrap_or_else(|| "?".into())
                    ))
                }
            }
        }
        if tt.shape.is_none() {
            match known {
                Some(k) => shape = k.shape.clone(),
                None => {
                    return err(format!(
                        "input '{name}' has no shape: mkc needs static shapes"
                    ))
                }
            }
        }
        if shape.iter().any(|&d| !(0..=MAX_DIM).contains(&d))
            || TensorType::new(shape.clone(), elem).num_elements() > MAX_ELEMENTS
        {
            return err(format!("input '{name}' has an unsupported shape {shape:?}"));
        }
        arg_types.push(Type::tensor(shape, elem));
        arg_attrs.push(Attr::Dict(vec![]));
        arg_names.push((name, false));
    }
    for t in &graph.initializer {
        let name = t.name.clone().unwrap_or_default();
        let raw = model.tensor(t)?;
        let n: usize = raw.shape.iter().product::<i64>() as usize;
        let external = t.data_location == Some(1);
        if !external && (!raw.elem.is_float() || n <= INLINE_LIMIT) {
            continue;
        }
        arg_types.push(Type::tensor(raw.shape.clone(), raw.elem));
        arg_attrs.push(Attr::Dict(vec![(
            "mkc.weight".into(),
            Attr::Str(name.clone()),
        )]));
        arg_names.push((name, true));
    }

    let mut body = Body::new();
    let func = body.create_op(
        OpSpec::new(builtin::Func::NAME)
            .regions(1)
            .attr("sym_name", Attr::Str("main".into()))
            .attr("arg_attrs", Attr::Array(arg_attrs)),
    );
    let mb = body.module_block();
    body.append_op(mb, func);
    let region = body.ops[func].regions[0];
    let block = body.append_block(region, &arg_types);
    let args = body.blocks[block].args.clone();
    let mut imp = Importer {
        opts,
        registry: Registry::with_all_dialects(),
        body,
        block,
        env: HashMap::new(),
        opset,
        node: String::new(),
    };
    for ((name, _), (&v, ty)) in arg_names.iter().zip(args.iter().zip(&arg_types)) {
        let ty = ty.as_tensor().expect("tensor").clone();
        imp.env.insert(name.clone(), Val { v, ty, c: None });
    }
    for t in &graph.initializer {
        let name = t.name.clone().unwrap_or_default();
        if imp.env.contains_key(&name) {
            continue;
        }
        let raw = model.tensor(t)?;
        let ty = TensorType::new(raw.shape.clone(), raw.elem);
        let tensor = Tensor::from_raw(&raw, &ty)
            .map_err(|e| OnnxError::new(format!("initializer '{name}' {e}")))?;
        let val = imp.konst(tensor);
        imp.env.insert(name, val);
    }
    for (i, node) in graph.node.iter().enumerate() {
        let op_type = node.op_type.clone().unwrap_or_default();
        let name = node
            .name
            .clone()
            .filter(|n| !n.is_empty())
            .unwrap_or_else(|| format!("#{i}"));
        imp.node = format!("{op_type} node '{name}'");
        let domain = node.domain.as_deref().unwrap_or("");
        if !domain.is_empty() && domain != "ai.onnx" {
            return err(format!(
                "{}: operators of domain '{domain}' are not supported",
                imp.node
            ));
        }
        let outs = imp.translate(&op_type, node).map_err(|e| OnnxError {
            message: if e.message.starts_with(&imp.node) {
                e.message.clone()
            } else {
                format!("{}: {}", imp.node, e.message)
            },
            ..e
        })?;
        for (k, out_name) in node.output.iter().enumerate() {
            if out_name.is_empty() {
                continue;
            }
            match outs.get(k) {
                Some(v) => {
                    imp.env.insert(out_name.clone(), v.clone());
                }
                None => {
                    return err(format!(
                        "{}: output #{k} ('{out_name}') is not supported",
                        imp.node
                    ))
                }
            }
        }
    }
    // Results, checked against the declared output types.
    let mut results = Vec::new();
    let mut result_types = Vec::new();
    for out in &graph.output {
        let name = out.name.clone().unwrap_or_default();
        let val = imp
            .env
            .get(&name)
            .cloned()
            .ok_or_else(|| OnnxError::new(format!("output '{name}' is never computed")))?;
        if let Some(tt) = out.r#type.as_ref().and_then(|t| t.tensor_type.as_ref()) {
            let elem = elem_of(tt.elem_type.unwrap_or(0))?;
            if elem != val.ty.elem {
                return err(format!(
                    "output '{name}' is declared {elem} but computes {}",
                    val.ty.elem
                ));
            }
            if let Some(s) = &tt.shape {
                let declared: Vec<Option<i64>> = s
                    .dim
                    .iter()
                    .map(|d| d.dim_value.filter(|_| d.dim_param.is_none()))
                    .collect();
                let fits = declared.len() == val.ty.rank()
                    && declared
                        .iter()
                        .zip(&val.ty.shape)
                        .all(|(d, &n)| d.is_none_or(|d| d == n));
                if !fits {
                    return err(format!(
                        "output '{name}' is declared with shape {declared:?} but computes {}",
                        val.ty
                    ));
                }
            }
        }
        results.push(val.v);
        result_types.push(Type::Tensor(val.ty));
    }
    let mut body = imp.body;
    body.build(block, OpSpec::new(builtin::Return::NAME).operands(results));
    // Constants that only fed import-time folding (shapes, axes) are dead now.
    let uses = body.use_counts(func);
    for op in body.blocks[block].ops.clone() {
        let data = &body.ops[op];
        if data.name == tg::Constant::NAME && uses[data.results[0]] == 0 {
            body.erase_op(op);
        }
    }
    body.ops[func].attrs.set(
        "function_type",
        Attr::Type(Type::Function(arg_types, result_types)),
    );
    Ok(body)
}

fn attr<'n>(node: &'n NodeProto, name: &str) -> Option<&'n AttributeProto> {
    node.attribute
        .iter()
        .find(|a| a.name.as_deref() == Some(name))
}

fn attr_i(node: &NodeProto, name: &str, default: i64) -> i64 {
    attr(node, name).and_then(|a| a.i).unwrap_or(default)
}

fn attr_f(node: &NodeProto, name: &str) -> Option<f64> {
    attr(node, name).and_then(|a| a.f).map(|f| f as f64)
}

fn attr_s(node: &NodeProto, name: &str) -> Option<String> {
    attr(node, name)
        .and_then(|a| a.s.as_ref())
        .map(|s| String::from_utf8_lossy(s).into_owned())
}

fn attr_ints(node: &NodeProto, name: &str) -> Option<Vec<i64>> {
    attr(node, name).map(|a| a.ints.clone())
}

fn i64_attr(v: i64) -> Attr {
    Attr::Int(v, ElemType::I64)
}

fn f64_attr(v: f64) -> Attr {
    Attr::Float(F64(v), ElemType::F64)
}

/// Normalises an ONNX axis (negative counts from the end) against `rank`.
fn axis(a: i64, rank: usize) -> Result<usize> {
    let r = rank as i64;
    let n = if a < 0 { a + r } else { a };
    // A rank-0 tensor has no axis at all: axis 0 of a scalar is out of range too.
    if n < 0 || n >= r {
        return err(format!("axis {a} is out of range for rank {rank}"));
    }
    Ok(n as usize)
}

impl Importer<'_> {
    fn input(&self, node: &NodeProto, i: usize) -> Result<Option<Val>> {
        match node.input.get(i).filter(|n| !n.is_empty()) {
            None => Ok(None),
            Some(n) => self
                .env
                .get(n)
                .cloned()
                .map(Some)
                .ok_or_else(|| OnnxError::new(format!("input '{n}' is not defined before use"))),
        }
    }

    fn req(&self, node: &NodeProto, i: usize) -> Result<Val> {
        self.input(node, i)?
            .ok_or_else(|| OnnxError::new(format!("missing required input #{i}")))
    }

    /// The compile-time value of input `i` (a constant, or a known graph input).
    fn const_input(&self, node: &NodeProto, i: usize, what: &str) -> Result<Option<Rc<Tensor>>> {
        let Some(v) = self.input(node, i)? else {
            return Ok(None);
        };
        if let Some(c) = v.c {
            return Ok(Some(c));
        }
        let name = &node.input[i];
        if let Some(raw) = self.opts.known_inputs.get(name) {
            let t = Tensor::from_raw(raw, &v.ty)
                .map_err(|e| OnnxError::new(format!("input '{name}' {e}")))?;
            return Ok(Some(Rc::new(t)));
        }
        err(format!(
            "the {what} (input '{name}') must be known at compile time: mkc needs static shapes"
        ))
    }

    fn const_ints(&self, node: &NodeProto, i: usize, what: &str) -> Result<Option<Vec<i64>>> {
        Ok(self
            .const_input(node, i, what)?
            .map(|t| (0..t.len()).map(|k| t.get(k).i()).collect()))
    }

    /// A constant built here, from a shape that came from the model: size-checked.
    fn new_const(
        &mut self,
        ty: TensorType,
        f: impl FnMut(usize) -> mkc_ir::dialect::tg::elementwise::Scalar,
    ) -> Result<Val> {
        if ty.num_elements() > MAX_CONSTANT {
            return err(format!(
                "a constant of type {ty} is too large to create at import"
            ));
        }
        Ok(self.konst(Tensor::from_fn(ty, f)))
    }

    fn konst(&mut self, t: Tensor) -> Val {
        let ty = t.ty.clone();
        let op = self.body.build(
            self.block,
            OpSpec::new(tg::Constant::NAME)
                .results(vec![Type::Tensor(ty.clone())])
                .attr("value", Attr::Dense(t.to_dense())),
        );
        Val {
            v: self.body.ops[op].results[0],
            ty,
            c: Some(Rc::new(t)),
        }
    }

    /// A rank-0 constant.
    fn scalar(&mut self, v: f64, elem: ElemType) -> Val {
        let t = Tensor::from_fn(TensorType::new([], elem), |_| {
            mkc_ir::dialect::tg::elementwise::Scalar::F(v)
        });
        self.konst(t)
    }

    /// Creates an op; result types come from `results`, or from the op's shape inference
    /// when `results` is `None`. Folds it when every operand is known.
    fn emit(
        &mut self,
        name: &str,
        operands: &[Val],
        results: Option<Vec<TensorType>>,
        attrs: Vec<(&str, Attr)>,
    ) -> Result<Vec<Val>> {
        let mut a = Attrs::new();
        for (k, v) in attrs {
            a.set(k, v);
        }
        let in_types: Vec<Type> = operands
            .iter()
            .map(|o| Type::Tensor(o.ty.clone()))
            .collect();
        let def = self
            .registry
            .get(name)
            .ok_or_else(|| OnnxError::new(format!("internal: no op {name}")))?;
        let result_types: Vec<TensorType> = match results {
            Some(r) => r,
            None => {
                let infer = def.infer.ok_or_else(|| {
                    OnnxError::new(format!("internal: {name} needs result types"))
                })?;
                infer(&in_types, &a)?
                    .into_iter()
                    .map(|t| t.as_tensor().cloned().expect("tensor results"))
                    .collect()
            }
        };
        // A negative or huge dimension (from a shape constant, say) would print as IR that
        // does not parse.
        if let Some(t) = result_types
            .iter()
            .find(|t| t.shape.iter().any(|&d| !(0..=MAX_DIM).contains(&d)))
        {
            return err(format!(
                "{name} would produce {t}: dimensions must lie in 0..={MAX_DIM}"
            ));
        }
        if let Some(t) = result_types
            .iter()
            .find(|t| t.num_elements() > MAX_ELEMENTS)
        {
            return err(format!(
                "{name} would produce {t}, which is larger than mkc supports"
            ));
        }
        let op = self.body.build(
            self.block,
            OpSpec {
                name: name.into(),
                operands: operands.iter().map(|o| o.v).collect(),
                result_types: result_types
                    .iter()
                    .map(|t| Type::Tensor(t.clone()))
                    .collect(),
                attrs: a,
                num_regions: 0,
                loc: Default::default(),
            },
        );
        // Check the op as the verifier would, so a mismatch names this node.
        if let Some(verify) = def.verify {
            verify(&self.body, op)?;
        }
        if let Some(infer) = def.infer {
            let want = infer(&in_types, &self.body.ops[op].attrs)?;
            for (w, got) in want.iter().zip(&result_types) {
                if w.as_tensor() != Some(got) {
                    return err(format!(
                        "internal: {name} result {got} differs from inferred {w}"
                    ));
                }
            }
        }
        let all_known = operands.iter().all(|o| o.c.is_some());
        let small = result_types.iter().all(|t| t.num_elements() <= FOLD_LIMIT);
        if all_known && small {
            return self.fold(op, operands);
        }
        Ok(self.body.ops[op]
            .results
            .iter()
            .zip(result_types)
            .map(|(&v, ty)| Val { v, ty, c: None })
            .collect())
    }

    /// Replaces `op` by constants computed with the interpreter's semantics.
    fn fold(&mut self, op: OpId, operands: &[Val]) -> Result<Vec<Val>> {
        let args: Vec<Rc<Tensor>> = operands
            .iter()
            .map(|o| o.c.clone().expect("known"))
            .collect();
        let mut no_weights =
            |name: &str, _: &TensorType| Err(format!("folding cannot read weight '{name}'"));
        let outs = interpret::eval_op(&mut Eval {
            body: &self.body,
            op,
            args: &args,
            weight: &mut no_weights,
            only: None,
        })?;
        self.body.erase_op(op);
        Ok(outs.into_iter().map(|t| self.konst(t)).collect())
    }

    fn one(&mut self, name: &str, operands: &[Val], attrs: Vec<(&str, Attr)>) -> Result<Val> {
        Ok(self.emit(name, operands, None, attrs)?.remove(0))
    }

    fn typed(
        &mut self,
        name: &str,
        operands: &[Val],
        ty: TensorType,
        attrs: Vec<(&str, Attr)>,
    ) -> Result<Val> {
        Ok(self.emit(name, operands, Some(vec![ty]), attrs)?.remove(0))
    }

    fn cast(&mut self, v: Val, elem: ElemType) -> Result<Val> {
        if v.ty.elem == elem {
            return Ok(v);
        }
        let ty = TensorType::new(v.ty.shape.clone(), elem);
        self.typed(tg::Cast::NAME, &[v], ty, vec![])
    }

    fn reshape(&mut self, v: Val, shape: Vec<i64>) -> Result<Val> {
        if v.ty.shape == shape {
            return Ok(v);
        }
        let ty = TensorType::new(shape, v.ty.elem);
        self.typed(tg::Reshape::NAME, &[v], ty, vec![])
    }

    fn transpose(&mut self, v: Val, perm: &[i64]) -> Result<Val> {
        self.one(tg::Transpose::NAME, &[v], vec![("perm", ints(perm))])
    }

    fn bin(&mut self, name: &str, a: Val, b: Val) -> Result<Val> {
        self.one(name, &[a, b], vec![])
    }

    fn un(&mut self, name: &str, a: Val) -> Result<Val> {
        self.one(name, &[a], vec![])
    }

    fn expand(&mut self, v: Val, shape: Vec<i64>) -> Result<Val> {
        if v.ty.shape == shape {
            return Ok(v);
        }
        let ty = TensorType::new(shape, v.ty.elem);
        self.typed(tg::Expand::NAME, &[v], ty, vec![])
    }

    /// where(mask, 0, -inf) of the given element type: an additive attention bias.
    fn bias_from_bool(&mut self, mask: Val, elem: ElemType) -> Result<Val> {
        let zero = self.scalar(0.0, elem);
        let ninf = self.scalar(f64::NEG_INFINITY, elem);
        self.one(tg::Where::NAME, &[mask, zero, ninf], vec![])
    }
}
