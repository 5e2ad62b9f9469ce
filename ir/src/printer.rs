//! The printer: MLIR syntax that `mlir-opt --allow-unregistered-dialect` parses. Dialect ops
//! print in the generic form; `module`, `func.func` and `func.return` in MLIR's pretty forms.
//! Values are renumbered (`%argN`, `%N`) per function, so printing is a fixed point of parsing.

use crate::attr::{write_dict, write_symbol_name, Attr};
use crate::dialect::builtin;
use crate::ir::{BlockId, Body, OpId, RegionId, ValueId};
use crate::types::{write_list, Type};
use cranelift_entity::SecondaryMap;
use std::fmt::Write;

/// Prints the whole module.
pub fn print(body: &Body) -> String {
    let mut s = print_op(body, body.root);
    s.push('\n');
    s
}

/// Prints one op (with everything nested in it) as a standalone text.
pub fn print_op(body: &Body, op: OpId) -> String {
    let mut p = Printer {
        body,
        names: SecondaryMap::new(),
        out: String::new(),
    };
    let mut counters = Counters::default();
    p.name_op(op, &mut counters);
    p.op(op, 0);
    p.out
}

#[derive(Default, Clone, Copy)]
struct Counters {
    value: usize,
    arg: usize,
}

struct Printer<'a> {
    body: &'a Body,
    names: SecondaryMap<ValueId, Option<String>>,
    out: String,
}

fn restarts_numbering(name: &str) -> bool {
    name == builtin::Func::NAME || name == builtin::Module::NAME
}

impl Printer<'_> {
    /// Names every value defined in `op`, in print order.
    fn name_op(&mut self, op: OpId, c: &mut Counters) {
        let data = &self.body.ops[op];
        let results = &data.results;
        if !results.is_empty() {
            let base = c.value;
            c.value += 1;
            for (i, &r) in results.iter().enumerate() {
                self.names[r] = Some(if results.len() == 1 {
                    format!("%{base}")
                } else {
                    format!("%{base}#{i}")
                });
            }
        }
        let mut inner = if restarts_numbering(&data.name) {
            Counters::default()
        } else {
            *c
        };
        for &r in &data.regions {
            for &b in &self.body.regions[r].blocks {
                for &a in &self.body.blocks[b].args {
                    self.names[a] = Some(format!("%arg{}", inner.arg));
                    inner.arg += 1;
                }
                for &o in &self.body.blocks[b].ops {
                    self.name_op(o, &mut inner);
                }
            }
        }
        if !restarts_numbering(&data.name) {
            *c = inner;
        }
    }

    fn name(&self, v: ValueId) -> String {
        self.names[v]
            .clone()
            .unwrap_or_else(|| "%<<UNKNOWN SSA VALUE>>".to_string())
    }

    fn indent(&mut self, n: usize) {
        for _ in 0..n {
            self.out.push_str("  ");
        }
    }

    fn results_prefix(&mut self, op: OpId) {
        let results = &self.body.ops[op].results;
        match results.len() {
            0 => {}
            1 => {
                let n = self.name(results[0]);
                let _ = write!(self.out, "{n} = ");
            }
            k => {
                let n = self.name(results[0]);
                let base = n.split('#').next().unwrap_or(&n).to_string();
                let _ = write!(self.out, "{base}:{k} = ");
            }
        }
    }

    fn op(&mut self, op: OpId, ind: usize) {
        let data = &self.body.ops[op];
        match data.name.as_str() {
            builtin::Module::NAME if data.regions.len() == 1 => self.module(op, ind),
            builtin::Func::NAME if self.is_printable_func(op) => self.func(op, ind),
            builtin::Return::NAME if data.regions.is_empty() && data.results.is_empty() => {
                self.ret(op)
            }
            _ => self.generic(op, ind),
        }
    }

    fn module(&mut self, op: OpId, ind: usize) {
        let data = &self.body.ops[op];
        self.out.push_str("module");
        let mut attrs = data.attrs.clone();
        if let Some(Attr::Str(name)) = attrs.remove("sym_name") {
            self.out.push_str(" @");
            let _ = write_symbol_name(&mut self.out, &name);
        }
        if !attrs.is_empty() {
            self.out.push_str(" attributes ");
            let _ = write_dict(&mut self.out, attrs.entries());
        }
        self.out.push(' ');
        self.region(data.regions[0], ind, false);
    }

    /// The pretty form needs a well-formed signature; anything else prints generically.
    fn is_printable_func(&self, op: OpId) -> bool {
        let data = &self.body.ops[op];
        let Some(Attr::Type(Type::Function(ins, _))) = data.attrs.get("function_type") else {
            return false;
        };
        if !matches!(data.attrs.get("sym_name"), Some(Attr::Str(_))) || data.regions.len() != 1 {
            return false;
        }
        if !data.results.is_empty() || !data.operands.is_empty() {
            return false;
        }
        let Some(entry) = self.body.entry_block(op, 0) else {
            return false;
        };
        let args = &self.body.blocks[entry].args;
        args.len() == ins.len()
            && args.iter().zip(ins).all(|(a, t)| self.body.ty(*a) == t)
            && match data.attrs.get("arg_attrs") {
                None => true,
                Some(Attr::Array(a)) => {
                    a.len() == ins.len() && a.iter().all(|d| matches!(d, Attr::Dict(_)))
                }
                Some(_) => false,
            }
    }

    fn func(&mut self, op: OpId, ind: usize) {
        let data = &self.body.ops[op];
        let mut attrs = data.attrs.clone();
        let Some(Attr::Type(Type::Function(_, outs))) = attrs.remove("function_type") else {
            unreachable!("checked by is_printable_func")
        };
        let Some(Attr::Str(name)) = attrs.remove("sym_name") else {
            unreachable!("checked by is_printable_func")
        };
        let arg_attrs = attrs.remove("arg_attrs");
        self.out.push_str("func.func ");
        if let Some(Attr::Str(vis)) = attrs.remove("sym_visibility") {
            let _ = write!(self.out, "{vis} ");
        }
        self.out.push('@');
        let _ = write_symbol_name(&mut self.out, &name);
        self.out.push('(');
        let entry = self.body.entry_block(op, 0).expect("checked");
        for (i, &a) in self.body.blocks[entry].args.iter().enumerate() {
            if i > 0 {
                self.out.push_str(", ");
            }
            let _ = write!(self.out, "{}: {}", self.name(a), self.body.ty(a));
            if let Some(Attr::Array(list)) = &arg_attrs {
                if let Some(Attr::Dict(d)) = list.get(i) {
                    if !d.is_empty() {
                        self.out.push(' ');
                        let _ = write_dict(&mut self.out, d);
                    }
                }
            }
        }
        self.out.push(')');
        if !outs.is_empty() {
            self.out.push_str(" -> ");
            if outs.len() == 1 && !matches!(outs[0], Type::Function(..)) {
                let _ = write!(self.out, "{}", outs[0]);
            } else {
                self.out.push('(');
                let _ = write_list(&mut self.out, &outs);
                self.out.push(')');
            }
        }
        if !attrs.is_empty() {
            self.out.push_str(" attributes ");
            let _ = write_dict(&mut self.out, attrs.entries());
        }
        self.out.push(' ');
        self.region(data.regions[0], ind, true);
    }

    fn ret(&mut self, op: OpId) {
        let data = &self.body.ops[op];
        self.out.push_str("return");
        if !data.operands.is_empty() {
            self.out.push(' ');
            let names: Vec<String> = data.operands.iter().map(|&v| self.name(v)).collect();
            self.out.push_str(&names.join(", "));
            self.out.push_str(" : ");
            let types: Vec<&Type> = data.operands.iter().map(|&v| self.body.ty(v)).collect();
            let _ = write_list(&mut self.out, &types);
        }
    }

    fn generic(&mut self, op: OpId, ind: usize) {
        let data = &self.body.ops[op];
        let _ = crate::attr::write_string(&mut self.out, &data.name);
        self.out.push('(');
        let names: Vec<String> = data.operands.iter().map(|&v| self.name(v)).collect();
        self.out.push_str(&names.join(", "));
        self.out.push(')');
        if !data.regions.is_empty() {
            self.out.push_str(" (");
            for (i, &r) in data.regions.iter().enumerate() {
                if i > 0 {
                    self.out.push_str(", ");
                }
                self.region(r, ind, false);
            }
            self.out.push(')');
        }
        if !data.attrs.is_empty() {
            self.out.push(' ');
            let _ = write_dict(&mut self.out, data.attrs.entries());
        }
        let ins: Vec<Type> = data
            .operands
            .iter()
            .map(|&v| self.body.ty(v).clone())
            .collect();
        let outs: Vec<Type> = data
            .results
            .iter()
            .map(|&v| self.body.ty(v).clone())
            .collect();
        let _ = write!(self.out, " : {}", Type::Function(ins, outs));
    }

    /// `{` blocks `}`; the entry block's label is omitted when it has no arguments, or when
    /// its arguments are printed in a function signature.
    fn region(&mut self, r: RegionId, ind: usize, signature_args: bool) {
        self.out.push_str("{\n");
        let blocks = self.body.regions[r].blocks.clone();
        for (i, &b) in blocks.iter().enumerate() {
            let has_args = !self.body.blocks[b].args.is_empty();
            if i > 0 || (has_args && !signature_args) {
                self.block_label(b, i, ind);
            }
            for &o in &self.body.blocks[b].ops {
                self.indent(ind + 1);
                self.results_prefix(o);
                self.op(o, ind + 1);
                self.out.push('\n');
            }
        }
        self.indent(ind);
        self.out.push('}');
    }

    fn block_label(&mut self, b: BlockId, index: usize, ind: usize) {
        self.indent(ind);
        let _ = write!(self.out, "^bb{index}");
        let args = &self.body.blocks[b].args;
        if !args.is_empty() {
            self.out.push('(');
            for (i, &a) in args.iter().enumerate() {
                if i > 0 {
                    self.out.push_str(", ");
                }
                let _ = write!(self.out, "{}: {}", self.name(a), self.body.ty(a));
            }
            self.out.push(')');
        }
        self.out.push_str(":\n");
    }
}
