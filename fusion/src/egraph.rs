//! The `tg` dialect as an egg language, and the bridge between IR and e-graphs.
//!
//! A node is an op name, an index into a table of (attributes, result types), and children.
//! Two nodes are equal only when all three are, so the e-graph keeps attributes exact; but
//! `matches` compares only name and arity, so rules are plain egg patterns over op names
//! (`(tg.mul ?x (tg.sigmoid ?x))`) and read attributes from the concrete nodes they matched.

use egg::{Analysis, DidMerge, EGraph, Id, Language, RecExpr, Subst, Symbol, Var};
use mkc_ir::attr::{Attr, Attrs, DenseAttr};
use mkc_ir::dialect::builtin;
use mkc_ir::dialect::tg;
use mkc_ir::{Body, OpId, OpSpec, Registry, Type, ValueId};
use std::collections::HashMap;

/// The `info` of a pattern node: matches any attributes.
pub const ANY: u32 = u32::MAX;

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TgNode {
    pub op: Symbol,
    pub info: u32,
    pub children: Vec<Id>,
}

impl Language for TgNode {
    type Discriminant = Symbol;

    fn discriminant(&self) -> Symbol {
        self.op
    }

    fn matches(&self, other: &Self) -> bool {
        self.op == other.op
            && self.children.len() == other.children.len()
            && (self.info == other.info || self.info == ANY || other.info == ANY)
    }

    fn children(&self) -> &[Id] {
        &self.children
    }

    fn children_mut(&mut self) -> &mut [Id] {
        &mut self.children
    }
}

impl egg::FromOp for TgNode {
    type Error = std::convert::Infallible;
    fn from_op(op: &str, children: Vec<Id>) -> Result<Self, Self::Error> {
        Ok(TgNode {
            op: Symbol::from(op),
            info: ANY,
            children,
        })
    }
}

impl std::fmt::Display for TgNode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.op.as_str())
    }
}

/// Attributes and result types of a node.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct NodeInfo {
    pub attrs: Attrs,
    pub results: Vec<Type>,
}

/// The e-class analysis: every class knows its value's type. It also owns the table of node
/// infos, so rules can read and create attributes.
#[derive(Default)]
pub struct TgAnalysis {
    pub infos: Vec<NodeInfo>,
    index: HashMap<NodeInfo, u32>,
}

impl TgAnalysis {
    pub fn intern(&mut self, info: NodeInfo) -> u32 {
        if let Some(&i) = self.index.get(&info) {
            return i;
        }
        let i = self.infos.len() as u32;
        self.infos.push(info.clone());
        self.index.insert(info, i);
        i
    }
}

pub type TgGraph = EGraph<TgNode, TgAnalysis>;

impl Analysis<TgNode> for TgAnalysis {
    /// The type of the class's value (`None` for a multi-result tuple).
    type Data = Option<Type>;

    fn make(egraph: &mut TgGraph, enode: &TgNode, _id: Id) -> Self::Data {
        let info = egraph.analysis.infos.get(enode.info as usize)?;
        match info.results.as_slice() {
            [t] => Some(t.clone()),
            _ => None,
        }
    }

    fn merge(&mut self, a: &mut Self::Data, b: Self::Data) -> DidMerge {
        if a.is_none() && b.is_some() {
            *a = b;
            DidMerge(true, false)
        } else {
            DidMerge(false, a.is_some() && b.is_none())
        }
    }
}

/// `op` itself when it is a function, else the functions nested under it.
pub fn functions(body: &Body, op: OpId) -> Vec<OpId> {
    if body.ops[op].name == builtin::Func::NAME {
        vec![op]
    } else {
        body.walk(op)
            .into_iter()
            .filter(|&f| body.ops[f].name == builtin::Func::NAME)
            .collect()
    }
}

/// One function of the IR as an e-graph: every value becomes an e-class. Arguments are
/// `arg` leaves (attribute `index`), a multi-result op is a tuple node read through `get`
/// nodes (attribute `index`), and the returned values hang under one `func.return` root.
pub struct Converted {
    pub egraph: TgGraph,
    pub root: Id,
}

fn index_attr(i: usize) -> Attrs {
    [("index", Attr::Int(i as i64, mkc_ir::ElemType::I64))]
        .into_iter()
        .collect()
}

pub fn to_egraph(body: &Body, func: OpId) -> Result<Converted, String> {
    let mut eg = TgGraph::default();
    let block = body.entry_block(func, 0).ok_or("function without a body")?;
    let mut ids: HashMap<ValueId, Id> = HashMap::new();
    for (i, &a) in body.blocks[block].args.iter().enumerate() {
        let info = eg.analysis.intern(NodeInfo {
            attrs: index_attr(i),
            results: vec![body.ty(a).clone()],
        });
        let id = eg.add(TgNode {
            op: Symbol::from("arg"),
            info,
            children: vec![],
        });
        ids.insert(a, id);
    }
    let mut root = None;
    for &op in &body.blocks[block].ops {
        let data = &body.ops[op];
        if !data.regions.is_empty() {
            return Err(format!(
                "'{}' has regions; fuse works on the tensor level",
                data.name
            ));
        }
        let children: Vec<Id> = data.operands.iter().map(|v| ids[v]).collect();
        if data.name == builtin::Return::NAME {
            root = Some(eg.add(TgNode {
                op: Symbol::from(builtin::Return::NAME),
                info: ANY,
                children,
            }));
            continue;
        }
        let results: Vec<Type> = data.results.iter().map(|&r| body.ty(r).clone()).collect();
        let info = eg.analysis.intern(NodeInfo {
            attrs: data.attrs.clone(),
            results: results.clone(),
        });
        let id = eg.add(TgNode {
            op: Symbol::from(data.name.as_str()),
            info,
            children,
        });
        if results.len() == 1 {
            ids.insert(data.results[0], id);
        } else {
            for (i, (&r, ty)) in data.results.iter().zip(results).enumerate() {
                let gi = eg.analysis.intern(NodeInfo {
                    attrs: index_attr(i),
                    results: vec![ty],
                });
                let g = eg.add(TgNode {
                    op: Symbol::from("get"),
                    info: gi,
                    children: vec![id],
                });
                ids.insert(r, g);
            }
        }
    }
    let root = root.ok_or("the function does not return")?;
    Ok(Converted { egraph: eg, root })
}

/// Replaces the body of `func` by the extracted program.
pub fn rebuild(
    body: &mut Body,
    func: OpId,
    expr: &RecExpr<TgNode>,
    infos: &[NodeInfo],
) -> Result<(), String> {
    let block = body.entry_block(func, 0).ok_or("function without a body")?;
    for op in body.blocks[block].ops.clone() {
        body.erase_op(op);
    }
    let args = body.blocks[block].args.clone();
    // Each expression node becomes a value (or, for tuples, an op whose results `get` reads).
    let mut vals: Vec<Option<ValueId>> = Vec::with_capacity(expr.len());
    let mut tuples: HashMap<usize, OpId> = HashMap::new();
    for (i, node) in expr.as_ref().iter().enumerate() {
        let child_val =
            |c: &Id| vals[usize::from(*c)].ok_or_else(|| "a tuple used as a value".to_string());
        let op = node.op.as_str();
        let info = infos.get(node.info as usize);
        let index = || {
            info.and_then(|i| i.attrs.get("index"))
                .and_then(Attr::as_int)
                .unwrap_or(0) as usize
        };
        match op {
            "arg" => vals.push(Some(args[index()])),
            "get" => {
                let t = tuples[&usize::from(node.children[0])];
                vals.push(Some(body.ops[t].results[index()]));
            }
            builtin::Return::NAME => {
                let operands = node
                    .children
                    .iter()
                    .map(child_val)
                    .collect::<Result<Vec<_>, _>>()?;
                body.build(block, OpSpec::new(builtin::Return::NAME).operands(operands));
                vals.push(None);
            }
            _ => {
                let info = info.ok_or_else(|| format!("node {op} has no attributes"))?;
                let operands = node
                    .children
                    .iter()
                    .map(child_val)
                    .collect::<Result<Vec<_>, _>>()?;
                let new = body.build(
                    block,
                    OpSpec {
                        name: op.to_string(),
                        operands,
                        result_types: info.results.clone(),
                        attrs: info.attrs.clone(),
                        num_regions: 0,
                        loc: Default::default(),
                    },
                );
                if info.results.len() == 1 {
                    vals.push(Some(body.ops[new].results[0]));
                } else {
                    tuples.insert(i, new);
                    vals.push(None);
                }
            }
        }
    }
    Ok(())
}

// ------------------------------------------------------------------------------- rules

/// What a rule's left-hand side bound: the e-graph, the substitution, and helpers to read
/// types, constants and the attributes of matched ops.
pub struct Match<'a> {
    pub egraph: &'a TgGraph,
    pub subst: &'a Subst,
}

impl Match<'_> {
    pub fn var(&self, name: &str) -> Id {
        let v: Var = name.parse().expect("a valid ?var");
        self.subst[v]
    }

    /// The tensor type of a class.
    pub fn ty(&self, id: Id) -> Option<&mkc_ir::TensorType> {
        self.egraph[id].data.as_ref().and_then(Type::as_tensor)
    }

    /// The dense constant a class holds, if any.
    pub fn constant(&self, id: Id) -> Option<&DenseAttr> {
        self.egraph[id].nodes.iter().find_map(|n| {
            if n.op.as_str() != tg::Constant::NAME {
                return None;
            }
            self.egraph.analysis.infos[n.info as usize]
                .attrs
                .get("value")
                .and_then(Attr::as_dense)
        })
    }

    /// Whether a class is a constant whose every element equals `v`.
    pub fn is_const(&self, id: Id, v: f64) -> bool {
        self.constant(id).is_some_and(|d| d.is_all(v))
    }

    /// The attributes of a node of kind `op` in class `id` whose children are `children`.
    pub fn attrs(&self, id: Id, op: &str, children: &[Id]) -> Option<&Attrs> {
        self.egraph[id].nodes.iter().find_map(|n| {
            let same = n.op.as_str() == op
                && n.children.len() == children.len()
                && n.children
                    .iter()
                    .zip(children)
                    .all(|(a, b)| self.egraph.find(*a) == self.egraph.find(*b));
            same.then(|| &self.egraph.analysis.infos[n.info as usize].attrs)
        })
    }

    /// The nodes of kind `op` in class `id`, with their attributes.
    pub fn nodes<'b>(
        &'b self,
        id: Id,
        op: &'b str,
    ) -> impl Iterator<Item = (&'b TgNode, &'b Attrs)> + 'b {
        self.egraph[id]
            .nodes
            .iter()
            .filter(move |n| n.op.as_str() == op)
            .map(move |n| (n, &self.egraph.analysis.infos[n.info as usize].attrs))
    }

    /// The attributes of the first node of kind `op` in class `id`.
    pub fn attrs_of(&self, id: Id, op: &str) -> Option<&Attrs> {
        self.egraph[id]
            .nodes
            .iter()
            .find(|n| n.op.as_str() == op)
            .map(|n| &self.egraph.analysis.infos[n.info as usize].attrs)
    }
}

/// A right-hand side: ops to add, each reading pattern variables or earlier ops. The last
/// op is unioned with the matched class.
pub enum Rhs {
    Var(&'static str),
    /// A class the rule's `build` found by inspecting the e-graph.
    Class(Id),
    Op {
        name: &'static str,
        attrs: Attrs,
        children: Vec<usize>,
    },
}

/// A rewrite: when `lhs` matches, `build` decides (and may refuse) what it is equal to.
pub struct Rule {
    pub name: &'static str,
    pub lhs: &'static str,
    pub build: fn(&Match) -> Option<Vec<Rhs>>,
}

struct RuleApplier {
    build: fn(&Match) -> Option<Vec<Rhs>>,
    registry: std::sync::Arc<Registry>,
}

impl egg::Applier<TgNode, TgAnalysis> for RuleApplier {
    fn apply_one(
        &self,
        egraph: &mut TgGraph,
        eclass: Id,
        subst: &Subst,
        _: Option<&egg::PatternAst<TgNode>>,
        _: Symbol,
    ) -> Vec<Id> {
        let rhs = {
            let m = Match { egraph, subst };
            match (self.build)(&m) {
                Some(r) => r,
                None => return vec![],
            }
        };
        let want = egraph[eclass].data.clone();
        let mut ids: Vec<Id> = Vec::new();
        for item in rhs {
            let id = match item {
                Rhs::Var(v) => subst[v.parse::<Var>().expect("valid var")],
                Rhs::Class(c) => c,
                Rhs::Op {
                    name,
                    attrs,
                    children,
                } => {
                    let kids: Vec<Id> = children.iter().map(|&c| ids[c]).collect();
                    let tys: Option<Vec<Type>> =
                        kids.iter().map(|&k| egraph[k].data.clone()).collect();
                    let Some(tys) = tys else { return vec![] };
                    let Some(infer) = self.registry.get(name).and_then(|d| d.infer) else {
                        return vec![];
                    };
                    let Ok(results) = infer(&tys, &attrs) else {
                        return vec![];
                    };
                    let info = egraph.analysis.intern(NodeInfo { attrs, results });
                    egraph.add(TgNode {
                        op: Symbol::from(name),
                        info,
                        children: kids,
                    })
                }
            };
            ids.push(id);
        }
        let Some(&last) = ids.last() else {
            return vec![];
        };
        // A rule may only equate values of the same type.
        if egraph[last].data != want {
            return vec![];
        }
        if egraph.union(eclass, last) {
            vec![eclass]
        } else {
            vec![]
        }
    }
}

/// Turns rules into egg rewrites.
pub fn rewrites(
    rules: &[Rule],
    registry: std::sync::Arc<Registry>,
) -> Vec<egg::Rewrite<TgNode, TgAnalysis>> {
    rules
        .iter()
        .map(|r| {
            let lhs: egg::Pattern<TgNode> = r
                .lhs
                .parse()
                .unwrap_or_else(|e| panic!("rule {}: bad pattern: {e:?}", r.name));
            egg::Rewrite::new(
                r.name,
                lhs,
                RuleApplier {
                    build: r.build,
                    registry: registry.clone(),
                },
            )
            .unwrap_or_else(|e| panic!("rule {}: {e}", r.name))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_match_by_op_name_but_not_nonlinear_subterms() {
        let mut eg = TgGraph::default();
        let t = Type::tensor(vec![4], mkc_ir::ElemType::F32);
        let info = eg.analysis.intern(NodeInfo {
            attrs: Attrs::new(),
            results: vec![t],
        });
        let x = eg.add(TgNode {
            op: Symbol::from("arg"),
            info,
            children: vec![],
        });
        let s = eg.add(TgNode {
            op: Symbol::from("tg.sigmoid"),
            info,
            children: vec![x],
        });
        let m = eg.add(TgNode {
            op: Symbol::from("tg.mul"),
            info,
            children: vec![x, s],
        });
        eg.rebuild();
        use egg::Searcher;
        // Linear patterns match whatever the attributes are.
        let linear: egg::Pattern<TgNode> = "(tg.mul ?a (tg.sigmoid ?b))".parse().unwrap();
        let found = linear.search(&eg);
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].eclass, eg.find(m));
        // A subterm over already-bound variables is looked up by hash and never matches:
        // the reason rules are written linear (see rules.rs).
        let nonlinear: egg::Pattern<TgNode> = "(tg.mul ?x (tg.sigmoid ?x))".parse().unwrap();
        assert!(nonlinear.search(&eg).is_empty());
    }
}
