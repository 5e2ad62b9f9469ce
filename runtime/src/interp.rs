//! The reference interpreter: executes `tg` IR on the CPU. It is the numeric reference every
//! other level is checked against, so it favours plain, obviously-correct loops: arithmetic
//! in f64, every op's result rounded to its element type (so bf16 in the IR means bf16
//! rounding here), reductions and dot products accumulated in f64.

use crate::tensor::{Data, Tensor};
use mkc_ir::attr::Attr;
use mkc_ir::dialect::builtin;
use mkc_ir::dialect::fused;
use mkc_ir::interpret::{self, Eval};
use mkc_ir::tiling::Region;
use mkc_ir::weights::WeightSource;
use mkc_ir::{Body, ElemType, OpId, TensorType, Type, ValueId};
use std::collections::HashMap;
use std::rc::Rc;

/// Executes functions of one module; caches weights across calls (a decode loop calls the
/// step function once per position).
pub struct Interpreter<'a> {
    body: &'a Body,
    weights: &'a dyn WeightSource,
    cache: HashMap<String, Rc<Tensor>>,
}

fn err_at(body: &Body, op: OpId, msg: impl std::fmt::Display) -> String {
    let d = &body.ops[op];
    if d.loc.is_known() {
        format!("'{}' at line {}: {msg}", d.name, d.loc.line)
    } else {
        format!("'{}': {msg}", d.name)
    }
}

fn tensor_type(t: &Type) -> Result<&TensorType, String> {
    t.as_tensor()
        .ok_or_else(|| format!("the interpreter handles tensors only, not {t}"))
}

impl<'a> Interpreter<'a> {
    pub fn new(body: &'a Body, weights: &'a dyn WeightSource) -> Self {
        Interpreter {
            body,
            weights,
            cache: HashMap::new(),
        }
    }

    /// The function called `name`.
    pub fn func(&self, name: &str) -> Result<OpId, String> {
        let b = self.body;
        b.blocks[b.module_block()]
            .ops
            .iter()
            .copied()
            .find(|&o| {
                b.ops[o].name == builtin::Func::NAME
                    && b.ops[o].attrs.get("sym_name").and_then(Attr::as_str) == Some(name)
            })
            .ok_or_else(|| format!("no function @{name} in the module"))
    }

    fn weight(&mut self, name: &str, ty: &TensorType) -> Result<Rc<Tensor>, String> {
        if let Some(t) = self.cache.get(name) {
            return Ok(t.clone());
        }
        let raw = self.weights.raw(name)?;
        let t = Rc::new(Tensor::from_raw(&raw, ty).map_err(|e| format!("weight '{name}' {e}"))?);
        self.cache.insert(name.to_string(), t.clone());
        Ok(t)
    }

    /// Runs `func`. Arguments marked `{mkc.weight = "name"}` are loaded from the weight
    /// source; the others are taken from `inputs`, in order.
    pub fn call(&mut self, func: OpId, inputs: Vec<Tensor>) -> Result<Vec<Tensor>, String> {
        let body = self.body;
        let entry = body
            .entry_block(func, 0)
            .ok_or("the function has no body")?;
        let mut values: HashMap<ValueId, Rc<Tensor>> = HashMap::new();
        let mut inputs = inputs.into_iter();
        for (i, &a) in body.blocks[entry].args.iter().enumerate() {
            let ty = tensor_type(body.ty(a))?;
            let weight = mkc_ir::dialect::builtin::weight_arg_name(body, func, i);
            let t = match weight {
                Some(name) => self.weight(name, ty)?,
                None => {
                    let t = inputs
                        .next()
                        .ok_or_else(|| format!("missing input for argument #{i}"))?;
                    if t.ty != *ty {
                        return Err(format!("argument #{i} expects {ty}, got {}", t.ty));
                    }
                    Rc::new(t)
                }
            };
            values.insert(a, t);
        }
        if inputs.next().is_some() {
            return Err("more inputs than the function takes".into());
        }
        for &op in &body.blocks[entry].ops {
            let data = &body.ops[op];
            if data.name == builtin::Return::NAME {
                return data
                    .operands
                    .iter()
                    .map(|v| {
                        values
                            .get(v)
                            .map(|t| (**t).clone())
                            .ok_or_else(|| "undefined value".to_string())
                    })
                    .collect();
            }
            let args: Vec<Rc<Tensor>> = data
                .operands
                .iter()
                .map(|v| {
                    values
                        .get(v)
                        .cloned()
                        .ok_or_else(|| err_at(body, op, "uses an undefined value"))
                })
                .collect::<Result<_, _>>()?;
            let outs = self.eval_op(op, &args).map_err(|e| err_at(body, op, e))?;
            for (&r, t) in data.results.iter().zip(outs) {
                values.insert(r, Rc::new(t));
            }
        }
        Err("the function has no return".into())
    }

    /// Evaluates one op on the given operand values (importers fold constants with it): a
    /// fused group by walking its region, any other op as its definition says.
    pub fn eval_op(&mut self, op: OpId, args: &[Rc<Tensor>]) -> Result<Vec<Tensor>, String> {
        self.eval_op_in(op, args, None)
    }

    /// [`Interpreter::eval_op`] of which only the boxes `only` of the (single) result are
    /// read: an op may leave its other elements poison ([`Eval::only`]).
    pub fn eval_op_in(
        &mut self,
        op: OpId,
        args: &[Rc<Tensor>],
        only: Option<&Region>,
    ) -> Result<Vec<Tensor>, String> {
        if fused::Group::is(self.body, op) {
            return self.eval_group(op, args);
        }
        let body = self.body;
        let mut weight = |name: &str, ty: &TensorType| self.weight(name, ty);
        interpret::eval_op(&mut Eval {
            body,
            op,
            args,
            weight: &mut weight,
            only,
        })
    }

    /// A group's region computes its results from its operands.
    fn eval_group(&mut self, op: OpId, args: &[Rc<Tensor>]) -> Result<Vec<Tensor>, String> {
        let body = self.body;
        let region = body.ops[op].regions[0];
        let block = *body.regions[region].blocks.first().ok_or("empty group")?;
        let mut vals: HashMap<ValueId, Rc<Tensor>> = HashMap::new();
        for (&a, t) in body.blocks[block].args.iter().zip(args) {
            vals.insert(a, t.clone());
        }
        for &inner in &body.blocks[block].ops {
            let d = &body.ops[inner];
            let ins: Vec<Rc<Tensor>> = d
                .operands
                .iter()
                .map(|v| {
                    vals.get(v)
                        .cloned()
                        .ok_or_else(|| err_at(body, inner, "uses a value from outside its group"))
                })
                .collect::<Result<_, _>>()?;
            if fused::Yield::is(body, inner) {
                return Ok(ins.iter().map(|t| (**t).clone()).collect());
            }
            let outs = self
                .eval_op(inner, &ins)
                .map_err(|e| err_at(body, inner, e))?;
            for (&r, t) in d.results.iter().zip(outs) {
                vals.insert(r, Rc::new(t));
            }
        }
        Err(format!("the group has no {}", fused::Yield::NAME))
    }
}

/// Helper for callers that build inputs: a rank-0 or rank-1 i64 tensor.
pub fn i64_tensor(shape: &[i64], values: Vec<i64>) -> Tensor {
    Tensor {
        ty: TensorType::new(shape.to_vec(), ElemType::I64),
        data: Data::I64(values),
    }
}
