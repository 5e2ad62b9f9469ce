//! The verifier: op declarations (operand/result/region counts, attributes, inferred types,
//! op-specific hooks), terminators, dominance, isolation and symbol uniqueness.

use crate::attr::Attr;
use crate::diag::{Diagnostic, Loc};
use crate::dialect::builtin;
use crate::ir::{Body, OpId, ValueDef, ValueId};
use crate::registry::{Registry, Traits};
use cranelift_entity::SecondaryMap;
use std::collections::HashMap;

/// Verifier settings.
#[derive(Clone, Copy, Debug, Default)]
pub struct VerifyOptions {
    /// Accept ops of dialects the registry does not know (as `mlir-opt` does with the flag).
    pub allow_unregistered: bool,
}

/// Verifies the whole module; returns every problem found (empty when the IR is valid).
pub fn verify(body: &Body, registry: &Registry, opts: VerifyOptions) -> Vec<Diagnostic> {
    let mut v = Verifier {
        body,
        registry,
        opts,
        position: SecondaryMap::new(),
        errors: Vec::new(),
    };
    v.run();
    v.errors
}

struct Verifier<'a> {
    body: &'a Body,
    registry: &'a Registry,
    opts: VerifyOptions,
    /// Index of each attached op in its block.
    position: SecondaryMap<OpId, u32>,
    errors: Vec<Diagnostic>,
}

/// Formats `'name' op message`, MLIR's prefix for op errors.
pub fn op_error(body: &Body, op: OpId, msg: impl AsRef<str>) -> Diagnostic {
    let data = &body.ops[op];
    Diagnostic::error(data.loc, format!("'{}' op {}", data.name, msg.as_ref()))
}

impl Verifier<'_> {
    fn run(&mut self) {
        let root = self.body.root;
        let all: Vec<OpId> = std::iter::once(root).chain(self.body.walk(root)).collect();
        for &op in &all {
            for &r in &self.body.ops[op].regions {
                for &b in &self.body.regions[r].blocks {
                    for (i, &o) in self.body.blocks[b].ops.iter().enumerate() {
                        self.position[o] = i as u32;
                    }
                }
            }
        }
        if self.body.ops[root].name != builtin::Module::NAME {
            self.errors.push(op_error(
                self.body,
                root,
                "the top-level op must be 'builtin.module'",
            ));
        }
        for &op in &all {
            self.verify_op(op);
        }
    }

    /// Block-quantized types are storage types of weights: a value of one is a function
    /// (or region) argument whose rows are whole blocks, and ops dequantize it as they read;
    /// no op produces one.
    fn check_block_types(&mut self, op: OpId) {
        let body = self.body;
        let data = &body.ops[op];
        for (i, &r) in data.results.iter().enumerate() {
            if let Some(e) = size_error(body.ty(r)) {
                self.err(op, format!("result #{i}: {e}"));
            }
        }
        for (i, &r) in data.results.iter().enumerate() {
            if let Some(t) = body.ty(r).as_tensor().filter(|t| t.elem.is_block()) {
                self.err(
                    op,
                    format!(
                        "result #{i} has type {t}: only weights (arguments) are stored \
                         block-quantized; ops read them as reals"
                    ),
                );
            }
        }
        for &reg in &data.regions {
            for &b in &body.regions[reg].blocks {
                for (i, &a) in body.blocks[b].args.iter().enumerate() {
                    if let Some(e) = size_error(body.ty(a)) {
                        self.err(op, format!("argument #{i}: {e}"));
                    }
                    if let Some(e) = block_shape_error(body.ty(a)) {
                        self.err(op, format!("argument #{i}: {e}"));
                    }
                }
            }
        }
    }

    fn err(&mut self, op: OpId, msg: impl AsRef<str>) {
        self.errors.push(op_error(self.body, op, msg));
    }

    fn verify_op(&mut self, op: OpId) {
        let body = self.body;
        let data = &body.ops[op];
        // Structure that holds for every op, registered or not.
        for &r in &data.regions {
            let n = body.regions[r].blocks.len();
            if n > 1 {
                self.err(
                    op,
                    format!("has a region with {n} blocks; mkc regions hold at most one block"),
                );
            }
        }
        for (i, &v) in data.operands.iter().enumerate() {
            self.check_dominance(op, i, v);
        }
        self.check_block_types(op);

        let def = self.registry.get(&data.name);
        let Some(def) = def else {
            let dialect = data.name.split_once('.').map_or("", |(d, _)| d);
            if self.registry.has_dialect(dialect) {
                self.err(
                    op,
                    format!("is not a registered operation of dialect '{dialect}'"),
                );
            } else if !self.opts.allow_unregistered {
                self.err(
                    op,
                    format!("belongs to unregistered dialect '{dialect}' (pass --allow-unregistered-dialect to accept it)"),
                );
            }
            return;
        };

        let counts = [
            ("operands", &def.operands, data.operands.len()),
            ("results", &def.results, data.results.len()),
            ("regions", &def.regions, data.regions.len()),
        ];
        let mut shape_ok = true;
        for (what, arity, n) in counts {
            if !arity.allows(n) {
                self.err(
                    op,
                    format!("expects {} {what}, but has {n}", arity.describe()),
                );
                shape_ok = false;
            }
        }
        for spec in &def.attrs {
            match data.attrs.get(spec.name) {
                None if spec.required => {
                    self.err(op, format!("requires attribute '{}'", spec.name));
                    shape_ok = false;
                }
                Some(a) if !spec.kind.accepts(a) => {
                    self.err(
                        op,
                        format!(
                            "attribute '{}' must be a {}, but is a {}",
                            spec.name,
                            spec.kind.name(),
                            a.kind_name()
                        ),
                    );
                    shape_ok = false;
                }
                _ => {}
            }
        }
        if def.traits.contains(Traits::TERMINATOR) {
            let last = data.parent.and_then(|b| body.blocks[b].ops.last().copied());
            if last != Some(op) {
                self.err(op, "must be the last operation in its block");
            }
        }
        if def.traits.contains(Traits::SYMBOL_TABLE) {
            self.check_symbols(op);
        }
        if !shape_ok {
            return;
        }
        if let Some(infer) = def.infer {
            let ins: Vec<_> = data.operands.iter().map(|&v| body.ty(v).clone()).collect();
            match infer(&ins, &data.attrs) {
                Err(msg) => self.err(op, msg),
                Ok(expected) => {
                    for (i, (&r, e)) in data.results.iter().zip(&expected).enumerate() {
                        if body.ty(r) != e {
                            self.err(
                                op,
                                format!(
                                    "result #{i} has type {}, but its operands imply {e}",
                                    body.ty(r)
                                ),
                            );
                        }
                    }
                }
            }
        }
        if let Some(hook) = def.verify {
            if let Err(msg) = hook(body, op) {
                self.err(op, msg);
            }
        }
        if let Some(hook) = def.verify_nested {
            if let Err((at, msg)) = hook(body, op) {
                self.err(at, msg);
            }
        }
    }

    /// An operand must be defined before its user in the same block, or in an enclosing
    /// block before the op that (transitively) holds the user, without crossing an op that is
    /// isolated from above.
    fn check_dominance(&mut self, user: OpId, index: usize, v: ValueId) {
        let body = self.body;
        let (def_block, def_pos) = match body.values[v].def {
            ValueDef::Placeholder => {
                self.err(user, format!("operand #{index} has no definition"));
                return;
            }
            ValueDef::Arg(b, _) => (b, None),
            ValueDef::Result(d, _) => match body.ops[d].parent {
                Some(b) if body.is_attached(d) => (b, Some(self.position[d])),
                _ => {
                    self.err(
                        user,
                        format!("operand #{index} is defined by an erased operation"),
                    );
                    return;
                }
            },
        };
        let mut anchor = user;
        while let Some(block) = body.ops[anchor].parent {
            if block == def_block {
                match def_pos {
                    None => return,
                    Some(p) if p < self.position[anchor] => return,
                    Some(_) => break,
                }
            }
            let Some(owner) = body.block_owner(block) else {
                break;
            };
            if self
                .registry
                .has_trait(&body.ops[owner].name, Traits::ISOLATED_FROM_ABOVE)
            {
                let def_inside = block_is_within(body, def_block, owner);
                if !def_inside {
                    let e = op_error(
                        body,
                        user,
                        format!(
                            "operand #{index} is defined outside '{}', which is isolated from above",
                            body.ops[owner].name
                        ),
                    );
                    self.errors.push(e);
                    return;
                }
            }
            anchor = owner;
        }
        let mut e = op_error(
            body,
            user,
            format!("operand #{index} does not dominate this use"),
        );
        if let ValueDef::Result(d, _) = body.values[v].def {
            e = e.with_note(body.ops[d].loc, "operand defined here");
        }
        self.errors.push(e);
    }

    fn check_symbols(&mut self, table: OpId) {
        let body = self.body;
        let mut seen: HashMap<&str, Loc> = HashMap::new();
        for &r in &body.ops[table].regions {
            for &b in &body.regions[r].blocks {
                for &o in &body.blocks[b].ops {
                    if let Some(Attr::Str(name)) = body.ops[o].attrs.get("sym_name") {
                        let loc = body.ops[o].loc;
                        if let Some(prev) = seen.insert(name, loc) {
                            self.errors.push(
                                op_error(body, o, format!("redefinition of symbol '@{name}'"))
                                    .with_note(prev, "previous definition here"),
                            );
                        }
                    }
                }
            }
        }
    }
}

/// Whether `block` lies (transitively) inside the regions of `op`.
fn block_is_within(body: &Body, block: crate::ir::BlockId, op: OpId) -> bool {
    let mut cur = body.block_owner(block);
    while let Some(o) = cur {
        if o == op {
            return true;
        }
        cur = body.parent_op(o);
    }
    false
}

/// Why a tensor type is too large to have a size, if it is: its element count or its bytes
/// overflow 64 bits (each dimension alone may be in range while their product is not).
pub fn size_error(ty: &crate::types::Type) -> Option<String> {
    let t = ty.as_tensor()?;
    let Some(n) = t.checked_num_elements() else {
        return Some(format!(
            "{t} has more elements than a 64-bit size can count"
        ));
    };
    // (Rows of whole blocks are block_shape_error's to check: count the blocks started.)
    let bytes = match t.elem {
        crate::types::ElemType::Block(f) => (n as u64)
            .div_ceil(f.block_elems() as u64)
            .checked_mul(f.block_bytes() as u64),
        e => (n as u64).checked_mul(e.bytes() as u64),
    };
    match bytes {
        Some(b) if b <= i64::MAX as u64 => None,
        _ => Some(format!("{t} has more bytes than a 64-bit size can count")),
    }
}

/// Why a block-quantized tensor type's shape cannot hold whole blocks per row, if it cannot.
pub fn block_shape_error(ty: &crate::types::Type) -> Option<String> {
    let t = ty.as_tensor()?;
    let crate::types::ElemType::Block(f) = t.elem else {
        return None;
    };
    let b = f.block_elems() as i64;
    match t.shape.last() {
        Some(&k) if k > 0 && k % b == 0 => None,
        _ => Some(format!(
            "{t}: a {} tensor's rows (its last dimension) must be whole blocks of {b} values",
            f.name()
        )),
    }
}

#[cfg(test)]
mod tests {
    /// Issue 26: each dimension is in range (at most 2^32 - 1), yet their product overflowed
    /// 64 bits and the verifier accepted the type; sizes computed from it then wrapped.
    #[test]
    fn element_counts_that_overflow_64_bits_are_refused() {
        let module = |ty: &str| {
            format!(
                "func.func @f(%x: {ty}) -> {ty} {{\n  %0 = \"tg.neg\"(%x) : ({ty}) -> {ty}\n  return %0 : {ty}\n}}\n"
            )
        };
        let e = crate::parse_text("big.mlir", &module("tensor<4294967295x4294967295x4xf32>"))
            .unwrap_err();
        assert!(
            e.contains("big.mlir:1:1: error")
                && e.contains(
                    "argument #0: tensor<4294967295x4294967295x4xf32> has more elements than a 64-bit size can count"
                ),
            "{e}"
        );
        // Elements that fit but whose bytes do not.
        let e = crate::parse_text("big.mlir", &module("tensor<4294967295x1073741824xf32>"))
            .unwrap_err();
        assert!(
            e.contains("has more bytes than a 64-bit size can count"),
            "{e}"
        );
        // Large but countable types still verify.
        crate::parse_text("ok.mlir", &module("tensor<4294967295x4xf32>")).unwrap();
    }
}
