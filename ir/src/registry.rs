//! The dialect registry: every op is declared once, with its operand/result/attribute
//! constraints, traits, and optional hooks (verify, shape inference, fold).
//!
//! Declaring an op is a few lines:
//!
//! ```
//! use mkc_ir::registry::{Registry, Traits, AttrKind};
//! use mkc_ir::types::Type;
//!
//! let mut r = Registry::new();
//! r.op("demo.scale", "multiplies a tensor by a constant factor")
//!     .operands(1)
//!     .results(1)
//!     .attr("factor", AttrKind::Float)
//!     .traits(Traits::PURE)
//!     .infer(|operands, _attrs| Ok(vec![operands[0].clone()]));
//! assert!(r.get("demo.scale").is_some());
//! ```

use crate::attr::{Attr, Attrs};
use crate::ir::{Body, OpId, ValueId};
use crate::types::Type;
use std::collections::BTreeMap;
use std::ops::{BitOr, RangeInclusive};

/// Op properties that passes and the verifier rely on.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub struct Traits(u32);

impl Traits {
    pub const NONE: Traits = Traits(0);
    /// No side effects: may be removed when unused, merged with an identical op, reordered.
    pub const PURE: Traits = Traits(1);
    /// Binary op whose operands may be swapped.
    pub const COMMUTATIVE: Traits = Traits(1 << 1);
    /// Ends a block.
    pub const TERMINATOR: Traits = Traits(1 << 2);
    /// Regions cannot use values defined outside the op.
    pub const ISOLATED_FROM_ABOVE: Traits = Traits(1 << 3);
    /// Defines a symbol through its `sym_name` attribute.
    pub const SYMBOL: Traits = Traits(1 << 4);
    /// Symbols defined directly inside must be unique.
    pub const SYMBOL_TABLE: Traits = Traits(1 << 5);
    /// Produces a value from attributes only (folded values are materialised with it).
    pub const CONSTANT_LIKE: Traits = Traits(1 << 6);
    /// Elementwise with numpy broadcasting.
    pub const ELEMENTWISE: Traits = Traits(1 << 7);
    /// Streams a weight or the KV cache: fusion anchors a group at it.
    pub const HEAVY: Traits = Traits(1 << 8);
    /// Reduces along an axis: a tile of its result needs all of that axis.
    pub const REDUCTION: Traits = Traits(1 << 9);

    pub fn contains(self, other: Traits) -> bool {
        self.0 & other.0 == other.0
    }

    pub fn names(self) -> Vec<&'static str> {
        let all = [
            (Traits::PURE, "Pure"),
            (Traits::COMMUTATIVE, "Commutative"),
            (Traits::TERMINATOR, "Terminator"),
            (Traits::ISOLATED_FROM_ABOVE, "IsolatedFromAbove"),
            (Traits::SYMBOL, "Symbol"),
            (Traits::SYMBOL_TABLE, "SymbolTable"),
            (Traits::CONSTANT_LIKE, "ConstantLike"),
            (Traits::ELEMENTWISE, "Elementwise"),
            (Traits::HEAVY, "Heavy"),
            (Traits::REDUCTION, "Reduction"),
        ];
        all.iter()
            .filter(|(t, _)| self.contains(*t))
            .map(|(_, n)| *n)
            .collect()
    }
}

impl BitOr for Traits {
    type Output = Traits;
    fn bitor(self, rhs: Traits) -> Traits {
        Traits(self.0 | rhs.0)
    }
}

/// How many operands, results or regions an op takes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Arity(pub RangeInclusive<usize>);

impl Arity {
    pub const ANY: Arity = Arity(0..=usize::MAX);
    pub fn at_least(n: usize) -> Arity {
        Arity(n..=usize::MAX)
    }
    pub fn allows(&self, n: usize) -> bool {
        self.0.contains(&n)
    }
    pub fn describe(&self) -> String {
        let (lo, hi) = (*self.0.start(), *self.0.end());
        match (lo, hi) {
            (l, h) if l == h => format!("{l}"),
            (l, usize::MAX) => format!("at least {l}"),
            (l, h) => format!("{l} to {h}"),
        }
    }
}

impl From<usize> for Arity {
    fn from(n: usize) -> Arity {
        Arity(n..=n)
    }
}

impl From<RangeInclusive<usize>> for Arity {
    fn from(r: RangeInclusive<usize>) -> Arity {
        Arity(r)
    }
}

/// The kind an attribute must have.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AttrKind {
    Any,
    Bool,
    Int,
    Float,
    Str,
    Type,
    Array,
    Dict,
    Dense,
    /// A dense constant or a weight reference.
    DenseOrWeight,
    SymbolRef,
}

impl AttrKind {
    pub fn accepts(self, a: &Attr) -> bool {
        match self {
            AttrKind::Any => true,
            AttrKind::Bool => matches!(a, Attr::Bool(_)),
            AttrKind::Int => matches!(a, Attr::Int(..)),
            AttrKind::Float => matches!(a, Attr::Float(..)),
            AttrKind::Str => matches!(a, Attr::Str(_)),
            AttrKind::Type => matches!(a, Attr::Type(_)),
            AttrKind::Array => matches!(a, Attr::Array(_)),
            AttrKind::Dict => matches!(a, Attr::Dict(_)),
            AttrKind::Dense => matches!(a, Attr::Dense(_)),
            AttrKind::DenseOrWeight => matches!(a, Attr::Dense(_) | Attr::Weight(_)),
            AttrKind::SymbolRef => matches!(a, Attr::SymbolRef(_)),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            AttrKind::Any => "any attribute",
            AttrKind::Bool => "bool",
            AttrKind::Int => "integer",
            AttrKind::Float => "float",
            AttrKind::Str => "string",
            AttrKind::Type => "type",
            AttrKind::Array => "array",
            AttrKind::Dict => "dictionary",
            AttrKind::Dense => "dense elements",
            AttrKind::DenseOrWeight => "dense elements or weight reference",
            AttrKind::SymbolRef => "symbol reference",
        }
    }
}

#[derive(Clone, Debug)]
pub struct AttrSpec {
    pub name: &'static str,
    pub kind: AttrKind,
    pub required: bool,
}

/// Extra checks beyond the declared constraints; the message becomes `'op' op message`.
pub type VerifyFn = fn(&Body, OpId) -> Result<(), String>;
/// A verifier of an op with a region that blames the op at fault (itself or one inside).
pub type NestedVerifyFn = fn(&Body, OpId) -> Result<(), (OpId, String)>;
/// Result types from operand types and attributes.
pub type InferFn = fn(&[Type], &Attrs) -> Result<Vec<Type>, String>;
/// Constant folding and algebraic identities: `None` when nothing applies.
pub type FoldFn = fn(&FoldInput) -> Option<Vec<Folded>>;
/// An elementwise op's scalar function, given its attributes.
pub type ScalarHook = fn(&Attrs) -> crate::dialect::tg::elementwise::ScalarFn;
/// What the op computes, on host tensors (the reference interpreter).
pub type InterpretFn =
    fn(&mut crate::interpret::Eval) -> Result<Vec<crate::tensor::Tensor>, String>;
/// What a tile of the op's results needs of its operands (see [`crate::tiling`]).
pub type TileFn = fn(&crate::tiling::NeedsInput) -> Vec<Option<crate::tiling::Region>>;

/// What a fold hook sees.
pub struct FoldInput<'a> {
    pub body: &'a Body,
    pub op: OpId,
    /// Per operand: its value when it is produced by a constant-like op.
    pub constants: Vec<Option<&'a Attr>>,
}

impl FoldInput<'_> {
    pub fn operand(&self, i: usize) -> ValueId {
        self.body.ops[self.op].operands[i]
    }
    pub fn result_type(&self, i: usize) -> &Type {
        self.body.ty(self.body.ops[self.op].results[i])
    }
    pub fn attrs(&self) -> &Attrs {
        &self.body.ops[self.op].attrs
    }
}

/// A fold result: an existing value, or a constant to materialise.
#[derive(Clone, Debug, PartialEq)]
pub enum Folded {
    Value(ValueId),
    Constant(Attr),
}

/// The declaration of one op.
#[derive(Clone, Debug)]
pub struct OpDef {
    pub name: &'static str,
    pub summary: &'static str,
    pub operands: Arity,
    pub results: Arity,
    pub regions: Arity,
    pub attrs: Vec<AttrSpec>,
    pub traits: Traits,
    pub verify: Option<VerifyFn>,
    pub verify_nested: Option<NestedVerifyFn>,
    pub infer: Option<InferFn>,
    pub fold: Option<FoldFn>,
    /// Elementwise ops: the scalar function (folding, interpretation, tiling and the kernel
    /// all take the op's elementwise meaning from it).
    pub scalar: Option<ScalarHook>,
    /// Every other op the interpreter runs.
    pub interpret: Option<InterpretFn>,
    /// What a tile of its result needs of its operands (elementwise ops broadcast; ops
    /// without a rule need their operands whole: always right, only wasteful).
    pub tile: Option<TileFn>,
}

impl OpDef {
    pub fn operands(&mut self, a: impl Into<Arity>) -> &mut Self {
        self.operands = a.into();
        self
    }
    pub fn results(&mut self, a: impl Into<Arity>) -> &mut Self {
        self.results = a.into();
        self
    }
    pub fn regions(&mut self, a: impl Into<Arity>) -> &mut Self {
        self.regions = a.into();
        self
    }
    /// A required attribute.
    pub fn attr(&mut self, name: &'static str, kind: AttrKind) -> &mut Self {
        self.attrs.push(AttrSpec {
            name,
            kind,
            required: true,
        });
        self
    }
    pub fn optional_attr(&mut self, name: &'static str, kind: AttrKind) -> &mut Self {
        self.attrs.push(AttrSpec {
            name,
            kind,
            required: false,
        });
        self
    }
    pub fn traits(&mut self, t: Traits) -> &mut Self {
        self.traits = self.traits | t;
        self
    }
    pub fn verify(&mut self, f: VerifyFn) -> &mut Self {
        self.verify = Some(f);
        self
    }
    pub fn verify_nested(&mut self, f: NestedVerifyFn) -> &mut Self {
        self.verify_nested = Some(f);
        self
    }
    pub fn infer(&mut self, f: InferFn) -> &mut Self {
        self.infer = Some(f);
        self
    }
    pub fn fold(&mut self, f: FoldFn) -> &mut Self {
        self.fold = Some(f);
        self
    }
    pub fn scalar(&mut self, f: ScalarHook) -> &mut Self {
        self.scalar = Some(f);
        self
    }
    pub fn interpret(&mut self, f: InterpretFn) -> &mut Self {
        self.interpret = Some(f);
        self
    }
    pub fn tile(&mut self, f: TileFn) -> &mut Self {
        self.tile = Some(f);
        self
    }
}

/// All declared ops, by name.
#[derive(Clone, Debug, Default)]
pub struct Registry {
    ops: BTreeMap<&'static str, OpDef>,
}

impl Registry {
    /// An empty registry (no dialects at all).
    pub fn new() -> Self {
        Self::default()
    }

    /// The registry of every dialect mkc ships, built once.
    pub fn builtin() -> &'static Registry {
        static BUILTIN: std::sync::OnceLock<Registry> = std::sync::OnceLock::new();
        BUILTIN.get_or_init(Registry::with_all_dialects)
    }

    /// A registry with every dialect mkc ships.
    pub fn with_all_dialects() -> Self {
        let mut r = Registry::new();
        crate::dialect::builtin::register(&mut r);
        crate::dialect::tg::register(&mut r);
        crate::dialect::fused::register(&mut r);
        crate::dialect::task::register(&mut r);
        crate::dialect::kernel::register(&mut r);
        r
    }

    /// Declares an op (zero operands, results and regions until said otherwise).
    pub fn op(&mut self, name: &'static str, summary: &'static str) -> &mut OpDef {
        self.ops.insert(
            name,
            OpDef {
                name,
                summary,
                operands: 0.into(),
                results: 0.into(),
                regions: 0.into(),
                attrs: Vec::new(),
                traits: Traits::NONE,
                verify: None,
                verify_nested: None,
                infer: None,
                fold: None,
                scalar: None,
                interpret: None,
                tile: None,
            },
        );
        self.ops.get_mut(name).expect("just inserted")
    }

    pub fn get(&self, name: &str) -> Option<&OpDef> {
        self.ops.get(name)
    }

    /// Whether any op of this dialect is declared.
    pub fn has_dialect(&self, dialect: &str) -> bool {
        self.ops
            .keys()
            .any(|k| k.split_once('.').is_some_and(|(d, _)| d == dialect))
    }

    pub fn ops(&self) -> impl Iterator<Item = &OpDef> {
        self.ops.values()
    }

    pub fn has_trait(&self, name: &str, t: Traits) -> bool {
        self.get(name).is_some_and(|d| d.traits.contains(t))
    }
}
