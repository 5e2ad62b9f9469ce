//! The IR itself: operations, blocks, regions and SSA values stored in arenas with typed
//! indices (Cranelift style). A [`Body`] owns one tree rooted at a `builtin.module` op.
//!
//! Erased operations stay in the arena, detached (no parent block); nothing reachable from
//! the root refers to them once a pass is done, and the verifier checks that.

use crate::attr::{Attr, Attrs};
use crate::diag::Loc;
use crate::dialect::builtin;
use crate::types::Type;
use cranelift_entity::{entity_impl, PrimaryMap, SecondaryMap};

/// An operation.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct OpId(u32);
entity_impl!(OpId, "op");

/// A basic block: arguments and a list of operations.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct BlockId(u32);
entity_impl!(BlockId, "block");

/// A region: the blocks an operation holds.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RegionId(u32);
entity_impl!(RegionId, "region");

/// An SSA value: an op result or a block argument.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ValueId(u32);
entity_impl!(ValueId, "v");

#[derive(Clone, Debug)]
pub struct OpData {
    /// Dialect-qualified name, e.g. `tg.add`.
    pub name: String,
    pub operands: Vec<ValueId>,
    pub results: Vec<ValueId>,
    pub attrs: Attrs,
    pub regions: Vec<RegionId>,
    pub parent: Option<BlockId>,
    pub loc: Loc,
}

#[derive(Clone, Debug, Default)]
pub struct BlockData {
    pub args: Vec<ValueId>,
    pub ops: Vec<OpId>,
    pub parent: Option<RegionId>,
}

#[derive(Clone, Debug, Default)]
pub struct RegionData {
    pub blocks: Vec<BlockId>,
    pub parent: Option<OpId>,
}

/// Where a value comes from.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum ValueDef {
    Result(OpId, u32),
    Arg(BlockId, u32),
    /// A name used before its definition while parsing; never survives a successful parse.
    Placeholder,
}

#[derive(Clone, Debug)]
pub struct ValueData {
    pub ty: Type,
    pub def: ValueDef,
}

/// One IR tree and the arenas it lives in.
#[derive(Clone, Debug)]
pub struct Body {
    pub ops: PrimaryMap<OpId, OpData>,
    pub blocks: PrimaryMap<BlockId, BlockData>,
    pub regions: PrimaryMap<RegionId, RegionData>,
    pub values: PrimaryMap<ValueId, ValueData>,
    /// The root operation (a `builtin.module`).
    pub root: OpId,
}

/// Everything needed to create an operation.
#[derive(Clone, Debug)]
pub struct OpSpec {
    pub name: String,
    pub operands: Vec<ValueId>,
    pub result_types: Vec<Type>,
    pub attrs: Attrs,
    pub num_regions: usize,
    pub loc: Loc,
}

impl OpSpec {
    pub fn new(name: impl Into<String>) -> Self {
        OpSpec {
            name: name.into(),
            operands: Vec::new(),
            result_types: Vec::new(),
            attrs: Attrs::new(),
            num_regions: 0,
            loc: Loc::UNKNOWN,
        }
    }
    pub fn operands(mut self, v: impl Into<Vec<ValueId>>) -> Self {
        self.operands = v.into();
        self
    }
    pub fn results(mut self, t: impl Into<Vec<Type>>) -> Self {
        self.result_types = t.into();
        self
    }
    pub fn attr(mut self, k: impl Into<String>, v: Attr) -> Self {
        self.attrs.set(k, v);
        self
    }
    pub fn regions(mut self, n: usize) -> Self {
        self.num_regions = n;
        self
    }
    pub fn loc(mut self, loc: Loc) -> Self {
        self.loc = loc;
        self
    }
}

impl Default for Body {
    fn default() -> Self {
        Self::new()
    }
}

impl Body {
    /// An empty `builtin.module` with one empty block.
    pub fn new() -> Self {
        let mut b = Body {
            ops: PrimaryMap::new(),
            blocks: PrimaryMap::new(),
            regions: PrimaryMap::new(),
            values: PrimaryMap::new(),
            root: OpId::from_u32(0),
        };
        let root = b.create_op(OpSpec::new(builtin::Module::NAME).regions(1));
        let region = b.ops[root].regions[0];
        b.append_block(region, &[]);
        b.root = root;
        b
    }

    /// Creates a detached operation with fresh result values and empty regions.
    pub fn create_op(&mut self, spec: OpSpec) -> OpId {
        let op = self.ops.push(OpData {
            name: spec.name,
            operands: spec.operands,
            results: Vec::new(),
            attrs: spec.attrs,
            regions: Vec::new(),
            parent: None,
            loc: spec.loc,
        });
        let results = spec
            .result_types
            .into_iter()
            .enumerate()
            .map(|(i, ty)| {
                self.values.push(ValueData {
                    ty,
                    def: ValueDef::Result(op, i as u32),
                })
            })
            .collect();
        self.ops[op].results = results;
        for _ in 0..spec.num_regions {
            let r = self.regions.push(RegionData {
                blocks: Vec::new(),
                parent: Some(op),
            });
            self.ops[op].regions.push(r);
        }
        op
    }

    /// Appends a new block with arguments of the given types to a region.
    pub fn append_block(&mut self, region: RegionId, arg_types: &[Type]) -> BlockId {
        let block = self.blocks.push(BlockData {
            args: Vec::new(),
            ops: Vec::new(),
            parent: Some(region),
        });
        for (i, ty) in arg_types.iter().enumerate() {
            let v = self.values.push(ValueData {
                ty: ty.clone(),
                def: ValueDef::Arg(block, i as u32),
            });
            self.blocks[block].args.push(v);
        }
        self.regions[region].blocks.push(block);
        block
    }

    /// Appends a detached op at the end of a block.
    pub fn append_op(&mut self, block: BlockId, op: OpId) {
        debug_assert!(self.ops[op].parent.is_none());
        self.ops[op].parent = Some(block);
        self.blocks[block].ops.push(op);
    }

    /// Inserts a detached op right before `before` in its block.
    pub fn insert_op_before(&mut self, before: OpId, op: OpId) {
        let block = self.ops[before].parent.expect("anchor op is detached");
        let pos = self.position(before);
        self.ops[op].parent = Some(block);
        self.blocks[block].ops.insert(pos, op);
    }

    /// Creates an op from `spec` and appends it to `block`; returns the op.
    pub fn build(&mut self, block: BlockId, spec: OpSpec) -> OpId {
        let op = self.create_op(spec);
        self.append_op(block, op);
        op
    }

    /// The position of an attached op in its block.
    pub fn position(&self, op: OpId) -> usize {
        let block = self.ops[op].parent.expect("op is detached");
        self.blocks[block]
            .ops
            .iter()
            .position(|&o| o == op)
            .expect("op not in its parent block")
    }

    /// Detaches an op from its block (its nested ops go with it).
    pub fn erase_op(&mut self, op: OpId) {
        if let Some(block) = self.ops[op].parent.take() {
            self.blocks[block].ops.retain(|&o| o != op);
        }
    }

    /// Whether the op is reachable from the root.
    pub fn is_attached(&self, op: OpId) -> bool {
        let mut cur = op;
        loop {
            if cur == self.root {
                return true;
            }
            match self.parent_op(cur) {
                Some(p) => cur = p,
                None => return false,
            }
        }
    }

    /// The op whose region holds this op.
    pub fn parent_op(&self, op: OpId) -> Option<OpId> {
        let block = self.ops[op].parent?;
        let region = self.blocks[block].parent?;
        self.regions[region].parent
    }

    /// The op that holds a block.
    pub fn block_owner(&self, block: BlockId) -> Option<OpId> {
        self.regions[self.blocks[block].parent?].parent
    }

    /// The defining op of a value, if it is an op result.
    pub fn def_op(&self, v: ValueId) -> Option<OpId> {
        match self.values[v].def {
            ValueDef::Result(op, _) => Some(op),
            _ => None,
        }
    }

    pub fn ty(&self, v: ValueId) -> &Type {
        &self.values[v].ty
    }

    pub fn op(&self, op: OpId) -> &OpData {
        &self.ops[op]
    }

    /// The first block of the root module.
    pub fn module_block(&self) -> BlockId {
        self.regions[self.ops[self.root].regions[0]].blocks[0]
    }

    /// The single block of an op's `i`th region.
    pub fn entry_block(&self, op: OpId, region: usize) -> Option<BlockId> {
        self.regions[*self.ops[op].regions.get(region)?]
            .blocks
            .first()
            .copied()
    }

    /// Every op nested under `op` (not `op` itself), in pre-order.
    pub fn walk(&self, op: OpId) -> Vec<OpId> {
        let mut out = Vec::new();
        self.walk_into(op, &mut out);
        out
    }

    fn walk_into(&self, op: OpId, out: &mut Vec<OpId>) {
        for &r in &self.ops[op].regions {
            for &b in &self.regions[r].blocks {
                for &o in &self.blocks[b].ops {
                    out.push(o);
                    self.walk_into(o, out);
                }
            }
        }
    }

    /// Number of uses of every value by ops nested under `root` (including `root` itself).
    pub fn use_counts(&self, root: OpId) -> SecondaryMap<ValueId, u32> {
        let mut counts = SecondaryMap::new();
        for op in std::iter::once(root).chain(self.walk(root)) {
            for &v in &self.ops[op].operands {
                counts[v] += 1;
            }
        }
        counts
    }

    /// Replaces every use of `old` by `new` among the ops nested under `scope` (inclusive).
    pub fn replace_uses_in(&mut self, scope: OpId, old: ValueId, new: ValueId) {
        for op in std::iter::once(scope).chain(self.walk(scope)) {
            for v in &mut self.ops[op].operands {
                if *v == old {
                    *v = new;
                }
            }
        }
    }

    /// Replaces every use of `old` by `new` in the whole tree.
    pub fn replace_all_uses(&mut self, old: ValueId, new: ValueId) {
        self.replace_uses_in(self.root, old, new)
    }
}
