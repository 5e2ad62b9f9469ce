//! Block-quantized weights (ggml's Q8_0, Q4_0, Q4_1, Q4_K, Q6_K) in the kernel: a weight
//! lives in two planes (`mkc_ir::quant::BlockFormat::planes`: every block's quantized values,
//! then every block's scales), and is dequantized in registers as it is read: one element at
//! a time for gathers and the generic paths (every format), or, for Q8_0, Q4_0 and Q4_1, a
//! warp per row of a matrix-vector product, each lane taking 16 bytes of quantized values
//! (16 or 32 weights) and their block's scales, the sum accumulated in f32.

use crate::gen::*;
use mkc_ir::quant::BlockFormat;
use mkc_ir::ElemType;

/// The formats whose matrix-vector products take the warp-per-row path of 16-byte loads
/// ([`Gen::block_row_dot`]); the K-quants (256-value super-blocks, packed sub-block scales)
/// are read an element at a time.
pub(crate) fn vector_path(f: BlockFormat) -> bool {
    matches!(f, BlockFormat::Q8_0 | BlockFormat::Q4_0 | BlockFormat::Q4_1)
}

/// The rows, blocks per row and block format of a block-quantized view (always a whole,
/// row-major weight).
fn geometry(view: &View) -> Result<(i64, i64, BlockFormat), String> {
    let ElemType::Block(f) = view.elem else {
        return Err("internal error: not a block-quantized view".into());
    };
    let k = *view.shape.last().ok_or("a block-quantized scalar")?;
    if view.strides != row_major(&view.shape) || view.is_scratch() {
        return Err(format!(
            "internal error: a {} weight viewed with strides {:?}",
            f.name(),
            view.strides
        ));
    }
    let rows = view.shape[..view.shape.len() - 1].iter().product::<i64>();
    Ok((rows, k / f.block_elems() as i64, f))
}

/// A loaded piece: its quantized values (4 words) and its block's scale (and Q4_1's
/// minimum), as SSA names.
pub(crate) struct Piece {
    words: String,
    d: String,
    m: Option<String>,
}

impl Piece {
    /// The values and their types, in loop-carried order.
    fn values(&self) -> Vec<(String, &'static str)> {
        let mut v = vec![
            (self.words.clone(), "vector<4xi32>"),
            (self.d.clone(), "f32"),
        ];
        if let Some(m) = &self.m {
            v.push((m.clone(), "f32"));
        }
        v
    }

    /// The types of [`Piece::values`] for format `f`.
    fn types(f: BlockFormat) -> Vec<&'static str> {
        let mut v = vec!["vector<4xi32>", "f32"];
        if f == BlockFormat::Q4_1 {
            v.push("f32");
        }
        v
    }

    fn from_values(names: &[String], f: BlockFormat) -> Piece {
        Piece {
            words: names[0].clone(),
            d: names[1].clone(),
            m: (f == BlockFormat::Q4_1).then(|| names[2].clone()),
        }
    }
}

/// Where a lane starts reading a piece's inputs (see [`Gen::block_row_dot`]): at chunk r
/// of its `chunks` 16-byte chunks, then r ^ 1, r ^ 2, ...; the values a chunk pairs with
/// follow by permuting the piece's words and (4-bit) swapping its nibbles, both per lane.
struct Rotation {
    chunks: i64,
    /// Inputs a chunk holds (4 f32 or 8 bf16).
    per_chunk: i64,
    /// Byte offsets (i64) of the chunks read in order.
    offsets: Vec<String>,
    /// The words' permutation as swaps: (index bit, whether this lane swaps over it).
    word_bits: Vec<(usize, String)>,
    /// The shift (i32) of byte b's low and high nibble: 8b + 0 and 8b + 4, or swapped.
    shifts: Vec<[String; 2]>,
}

/// What a `blocks` product multiplies its pieces by: the activation itself, read in each
/// lane's [`Rotation`], or its row rounded to 8 bits (`act_q8`) in a scratch buffer.
enum Inputs<'a> {
    Floats(Rotation),
    Rounded(&'a View),
}

/// How [`Gen::block_matvec`] splits a weight's rows among lanes: a group of `lanes` lanes a
/// row, each taking `unroll` 16-byte pieces a round, `inner` rounds a row.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct BlockSplit {
    pub(crate) lanes: i64,
    pub(crate) unroll: i64,
    pub(crate) inner: i64,
    /// 16-byte pieces of quantized values a row holds.
    pub(crate) pieces: i64,
    /// Whether the last round reaches past the row's end (its pieces add nothing).
    pub(crate) masked: bool,
}

impl BlockSplit {
    /// The split for rows of `nb` blocks of format `f`, on integer dot products or not.
    pub(crate) fn of(f: BlockFormat, nb: i64, integer: bool) -> BlockSplit {
        let pieces = nb * (f.planes().0 / 16) as i64;
        let lanes = [32i64, 16, 8]
            .into_iter()
            .find(|&l| pieces >= 4 * l)
            .unwrap_or(4);
        // Pieces a lane loads a round: at most 2 four-bit ones (32 values each, dequantized
        // to f32: more spill registers), 4 Q8_0 ones or 4 of any on integer dot products;
        // a round past the row's end (pieces not a multiple of the lanes) adds nothing.
        let per_lane = (pieces + lanes - 1) / lanes;
        let most = if f == BlockFormat::Q8_0 || integer {
            4
        } else {
            2
        };
        let unroll = [4i64, 2, 1]
            .into_iter()
            .find(|&u| u <= most && u <= per_lane && pieces % (lanes * u) == 0)
            .unwrap_or(1);
        BlockSplit {
            lanes,
            unroll,
            inner: (per_lane + unroll - 1) / unroll,
            pieces,
            masked: pieces % (lanes * unroll) != 0,
        }
    }

    /// The split of a `blocks` or `dp4a` product by the weight `w`.
    pub(crate) fn of_view(w: &View, integer: bool) -> Result<BlockSplit, String> {
        let (_, nb, f) = geometry(w)?;
        Ok(BlockSplit::of(f, nb, integer))
    }
}

/// The index arithmetic of one [`Gen::block_matvec`] loop, as SSA names.
struct BlockLoop {
    f: BlockFormat,
    split: BlockSplit,
    boxes: Vec<RegionBox>,
    total: String,
    steps: String,
    warp: String,
    nwarps: String,
    gc: String,
    ic: String,
    sub: String,
    g64: String,
    s64: String,
    last: String,
    last_piece: String,
    nbc: String,
}

impl Gen {
    /// A byte pointer `at` bytes (an i64) past the view's start.
    fn block_ptr(&mut self, view: &View, at: &str) -> String {
        let a = self.op(format!("arith.addi {}, {at} : i64", view.offset));
        self.op(format!(
            "llvm.getelementptr {}[{a}] : (!llvm.ptr<1>, i64) -> !llvm.ptr<1>, i8",
            view.base
        ))
    }

    /// An f16 scale `at` bytes past `p`, as f32.
    fn scale_at(&mut self, p: &str, at: i64) -> String {
        let p = if at == 0 {
            p.to_string()
        } else {
            let c = self.i64c(at);
            self.op(format!(
                "llvm.getelementptr {p}[{c}] : (!llvm.ptr<1>, i64) -> !llvm.ptr<1>, i8"
            ))
        };
        let h = self.op(format!("llvm.load {p} : !llvm.ptr<1> -> f16"));
        self.op(format!("arith.extf {h} : f16 to f32"))
    }

    /// Pointers to block `blk` (an i64: row * blocks per row + block in the row)'s payload
    /// and scales.
    fn block_parts(&mut self, view: &View, blk: &str) -> Result<(String, String), String> {
        let (rows, nb, f) = geometry(view)?;
        let (payload, meta) = f.planes();
        let pb = self.i64c(payload as i64);
        let po = self.op(format!("arith.muli {blk}, {pb} : i64"));
        let pp = self.block_ptr(view, &po);
        let mb = self.i64c(meta as i64);
        let plane = self.i64c(rows * nb * payload as i64);
        let mo = self.op(format!("arith.muli {blk}, {mb} : i64"));
        let mo = self.op(format!("arith.addi {plane}, {mo} : i64"));
        let mp = self.block_ptr(view, &mo);
        Ok((pp, mp))
    }

    /// The element at `idx` of a block-quantized view, dequantized as ggml does (f32).
    pub(crate) fn load_block_elem(
        &mut self,
        view: &View,
        idx: &[String],
    ) -> Result<String, String> {
        let (_, _, f) = geometry(view)?;
        let mut flat = self.i64c(0);
        for (i, s) in idx.iter().zip(&view.strides) {
            let st = self.i64c(*s as i64);
            let t = self.op(format!("arith.muli {i}, {st} : i64"));
            flat = self.op(format!("arith.addi {flat}, {t} : i64"));
        }
        let be = self.i64c(f.block_elems() as i64);
        let blk = self.op(format!("arith.divsi {flat}, {be} : i64"));
        let j = self.op(format!("arith.remsi {flat}, {be} : i64"));
        let (pp, mp) = self.block_parts(view, &blk)?;
        match f {
            BlockFormat::Q4K => return Ok(self.q4_k_elem(&pp, &mp, &j)),
            BlockFormat::Q6K => return Ok(self.q6_k_elem(&pp, &mp, &j)),
            _ => {}
        }
        let d = self.scale_at(&mp, 0);
        if f == BlockFormat::Q8_0 {
            let qp = self.op(format!(
                "llvm.getelementptr {pp}[{j}] : (!llvm.ptr<1>, i64) -> !llvm.ptr<1>, i8"
            ));
            let q = self.op(format!("llvm.load {qp} : !llvm.ptr<1> -> i8"));
            let q = self.op(format!("arith.sitofp {q} : i8 to f32"));
            return Ok(self.op(format!("arith.mulf {d}, {q} : f32")));
        }
        // 4-bit: byte j % 16 holds value j (low nibble) and value j + 16 (high nibble).
        let c16 = self.i64c(16);
        let byte = self.op(format!("arith.remsi {j}, {c16} : i64"));
        let high = self.op(format!("arith.divsi {j}, {c16} : i64"));
        let qp = self.op(format!(
            "llvm.getelementptr {pp}[{byte}] : (!llvm.ptr<1>, i64) -> !llvm.ptr<1>, i8"
        ));
        let q = self.op(format!("llvm.load {qp} : !llvm.ptr<1> -> i8"));
        let q = self.op(format!("arith.extui {q} : i8 to i32"));
        let c4 = self.op("arith.constant 4 : i32");
        let h32 = self.op(format!("arith.trunci {high} : i64 to i32"));
        let sh = self.op(format!("arith.muli {h32}, {c4} : i32"));
        let q = self.op(format!("arith.shrui {q}, {sh} : i32"));
        let c15 = self.op("arith.constant 15 : i32");
        let q = self.op(format!("arith.andi {q}, {c15} : i32"));
        let qf = self.op(format!("arith.uitofp {q} : i32 to f32"));
        Ok(match f {
            BlockFormat::Q4_0 => {
                let c8 = self.f32c(8.0);
                let x = self.op(format!("arith.subf {qf}, {c8} : f32"));
                self.op(format!("arith.mulf {x}, {d} : f32"))
            }
            _ => {
                let m = self.scale_at(&mp, 2);
                let x = self.op(format!("arith.mulf {qf}, {d} : f32"));
                self.op(format!("arith.addf {x}, {m} : f32"))
            }
        })
    }

    /// Piece `p` (an i64, within the row whose first block is `first`): its 16 bytes of
    /// quantized values and its block's scales.
    fn load_piece(
        &mut self,
        w: &View,
        f: BlockFormat,
        first: &str,
        p: &str,
    ) -> Result<Piece, String> {
        let ppb = self.i64c((f.planes().0 / 16) as i64);
        let b = self.op(format!("arith.divsi {p}, {ppb} : i64"));
        let half = self.op(format!("arith.remsi {p}, {ppb} : i64"));
        let blk = self.op(format!("arith.addi {first}, {b} : i64"));
        let (pp, mp) = self.block_parts(w, &blk)?;
        let c16 = self.i64c(16);
        let off = self.op(format!("arith.muli {half}, {c16} : i64"));
        let qp = self.op(format!(
            "llvm.getelementptr {pp}[{off}] : (!llvm.ptr<1>, i64) -> !llvm.ptr<1>, i8"
        ));
        let words = self.op(format!(
            "llvm.load {qp} {{alignment = 16 : i64}} : !llvm.ptr<1> -> vector<4xi32>"
        ));
        let d = self.scale_at(&mp, 0);
        let m = (f == BlockFormat::Q4_1).then(|| self.scale_at(&mp, 2));
        Ok(Piece { words, d, m })
    }

    /// The first input element piece `p` (an i64, within its row) multiplies.
    fn piece_k0(&mut self, f: BlockFormat, p: &str) -> String {
        let per_piece = self.i64c(if f == BlockFormat::Q8_0 { 16 } else { 32 });
        self.op(format!("arith.muli {p}, {per_piece} : i64"))
    }

    /// The index arithmetic of [`Gen::block_matvec`]'s loop over `need` (emitted here).
    fn block_loop(&mut self, w: &View, need: &[RBox], integer: bool) -> Result<BlockLoop, String> {
        let (_, nb, f) = geometry(w)?;
        let split = BlockSplit::of(f, nb, integer);
        let (boxes, total) = self.region_boxes(need);
        let zero = self.i64c(0);
        let groups = 32 / split.lanes;
        let gc = self.i64c(groups);
        let g1 = self.i64c(groups - 1);
        let rounds = self.op(format!("arith.addi {total}, {g1} : i64"));
        let rounds = self.op(format!("arith.divsi {rounds}, {gc} : i64"));
        // This warp's row rounds warp, warp + nwarps, ...; `inner` lane rounds each.
        let warp = self.op("arith.index_cast %warp : index to i64");
        let nwarps = self.op("arith.index_cast %nwarps : index to i64");
        let left = self.op(format!("arith.subi {rounds}, {warp} : i64"));
        let left = self.op(format!("arith.maxsi {left}, {zero} : i64"));
        let one = self.i64c(1);
        let w1 = self.op(format!("arith.subi {nwarps}, {one} : i64"));
        let mine = self.op(format!("arith.addi {left}, {w1} : i64"));
        let mine = self.op(format!("arith.divsi {mine}, {nwarps} : i64"));
        let ic = self.i64c(split.inner);
        let steps = self.op(format!("arith.muli {mine}, {ic} : i64"));
        let lc = self.idx(split.lanes);
        let sub = self.op(format!("arith.remui %lane, {lc} : index"));
        let g = self.op(format!("arith.divui %lane, {lc} : index"));
        let g64 = self.op(format!("arith.index_cast {g} : index to i64"));
        let s64 = self.op(format!("arith.index_cast {sub} : index to i64"));
        let last = self.op(format!("arith.subi {total}, {one} : i64"));
        let last_piece = self.i64c(split.pieces - 1);
        let nbc = self.i64c(nb);
        Ok(BlockLoop {
            f,
            split,
            boxes,
            total,
            steps,
            warp,
            nwarps,
            gc,
            ic,
            sub,
            g64,
            s64,
            last,
            last_piece,
            nbc,
        })
    }

    /// Round `t` of this lane: its row's multi-index, whether the row is in the region, and
    /// the round within the row.
    fn block_at(&mut self, l: &BlockLoop, need: &[RBox], t: &str) -> (Vec<String>, String, String) {
        let (ic, nwarps, warp, gc, g64) = (&l.ic, &l.nwarps, &l.warp, &l.gc, &l.g64);
        let k = self.op(format!("arith.divsi {t}, {ic} : i64"));
        let j = self.op(format!("arith.remsi {t}, {ic} : i64"));
        let i = self.op(format!("arith.muli {k}, {nwarps} : i64"));
        let i = self.op(format!("arith.addi {i}, {warp} : i64"));
        let r = self.op(format!("arith.muli {i}, {gc} : i64"));
        let r = self.op(format!("arith.addi {r}, {g64} : i64"));
        let valid = self.op(format!("arith.cmpi slt, {r}, {} : i64", l.total));
        let li = self.op(format!("arith.minsi {r}, {} : i64", l.last));
        (self.region_index(need, &l.boxes, &li), valid, j)
    }

    /// Piece `u` of round `j` of the row: sub + lanes * (j * unroll + u).
    fn block_piece(&mut self, l: &BlockLoop, j: &str, u: i64) -> String {
        let uc = self.i64c(l.split.unroll);
        let q = self.op(format!("arith.muli {j}, {uc} : i64"));
        let du = self.i64c(u);
        let q = self.op(format!("arith.addi {q}, {du} : i64"));
        let lcc = self.i64c(l.split.lanes);
        let q = self.op(format!("arith.muli {q}, {lcc} : i64"));
        self.op(format!("arith.addi {q}, {} : i64", l.s64))
    }

    /// Loads pieces `us` of this lane's round `t`.
    fn block_round(
        &mut self,
        l: &BlockLoop,
        w: &View,
        need: &[RBox],
        t: &str,
        us: std::ops::Range<i64>,
    ) -> Result<Vec<Piece>, String> {
        let (o, _, j) = self.block_at(l, need, t);
        let n = o.last().ok_or("a product's rows are its last axis")?;
        let first = self.op(format!("arith.muli {n}, {} : i64", l.nbc));
        let mut v = Vec::new();
        for u in us {
            let p = self.block_piece(l, &j, u);
            let p = self.op(format!("arith.minsi {p}, {} : i64", l.last_piece));
            v.push(self.load_piece(w, l.f, &first, &p)?);
        }
        Ok(v)
    }

    /// Pieces `us` of this lane's first round, loaded wherever the code stands (before the
    /// task's wait, or before rounding the input): zeros when the region is empty (it has
    /// no row to read).
    fn block_first_pieces(
        &mut self,
        l: &BlockLoop,
        w: &View,
        need: &[RBox],
        us: std::ops::Range<i64>,
    ) -> Result<Vec<Piece>, String> {
        if us.is_empty() {
            return Ok(Vec::new());
        }
        let count = us.end - us.start;
        let zero = self.i64c(0);
        let any = self.op(format!("arith.cmpi sgt, {}, {zero} : i64", l.total));
        let res = self.fresh();
        let types: Vec<&str> = (0..count).flat_map(|_| Piece::types(l.f)).collect();
        self.open(format!(
            "{res}:{} = scf.if {any} -> ({}) {{",
            types.len(),
            types.join(", ")
        ));
        let loaded = self.block_round(l, w, need, &zero, us)?;
        let values: Vec<String> = loaded
            .iter()
            .flat_map(|p| p.values().into_iter().map(|(v, _)| v))
            .collect();
        self.line(format!(
            "scf.yield {} : {}",
            values.join(", "),
            types.join(", ")
        ));
        self.close("} else {");
        self.indent += 1;
        let zw = self.op("arith.constant dense<0> : vector<4xi32>");
        let zf = self.f32c(0.0);
        let zeros: Vec<String> = types
            .iter()
            .map(|t| if *t == "f32" { zf.clone() } else { zw.clone() })
            .collect();
        self.line(format!(
            "scf.yield {} : {}",
            zeros.join(", "),
            types.join(", ")
        ));
        self.close("}");
        let per = Piece::types(l.f).len();
        Ok((0..count as usize)
            .map(|i| {
                let names: Vec<String> =
                    (0..per).map(|k| format!("{res}#{}", i * per + k)).collect();
                Piece::from_values(&names, l.f)
            })
            .collect())
    }

    /// Loads, before the task's wait, the first `count` pieces of this lane's first round
    /// of the product of `w` over `need` ([`Gen::block_matvec`] with `integer` inputs or
    /// not): they are held in registers across the wait.
    pub(crate) fn emit_block_preload(
        &mut self,
        w: &View,
        need: &[RBox],
        integer: bool,
        count: i64,
    ) -> Result<Vec<Piece>, String> {
        if need.is_empty() {
            return Ok(Vec::new());
        }
        let l = self.block_loop(w, need, integer)?;
        self.block_first_pieces(&l, w, need, 0..count)
    }

    /// `res[.., n] = x · w[n, :]` for the rows n of the region `need` of a block-quantized
    /// weight: a group of lanes per row, sized so that each lane has about four 16-byte
    /// pieces of the row to load (a row of Q4_0 blocks is a quarter of its bf16 bytes), the
    /// groups of a warp on consecutive rows ([`BlockSplit`]). Lane `sub` of a group takes
    /// pieces sub, sub + lanes, ..., `unroll` of them a round; a lane's rounds, over all of
    /// its group's rows, are one loop whose every round issues the next one's loads (the
    /// next row's first where this one ends) before it computes, so loads are in flight
    /// while the lane computes, across rows. At a row's last round the group's lanes combine
    /// their sums by shuffles (every group of the warp is at the same round: the shuffles
    /// see the whole warp) and its first lane stores the row. The first round's pieces are
    /// loaded before anything else (the input's rounding); `held` of them were loaded
    /// before the task's wait ([`Gen::emit_block_preload`]). `x8`: on integer dot products,
    /// the rounded input's buffer, and whether to round the row into it (not where an
    /// earlier product of the same row did).
    ///
    /// A piece's inputs are read from memory in 16-byte chunks, each lane starting at its
    /// own chunk ([`Rotation`]): consecutive lanes' pieces lie a piece's inputs apart (128
    /// bytes of f32 for a 4-bit piece), so reading chunk j together would put every lane of
    /// a quarter-warp on the same shared-memory banks.
    pub(crate) fn block_matvec(
        &mut self,
        a: &View,
        w: &View,
        res: &View,
        need: &[RBox],
        x8: Option<(&View, bool)>,
        held: Vec<Piece>,
    ) -> Result<(), String> {
        if need.is_empty() {
            return Ok(());
        }
        let l = self.block_loop(w, need, x8.is_some())?;
        let (f, split) = (l.f, l.split);
        let (lanes, unroll, inner) = (split.lanes, split.unroll, split.inner);
        // The first round's pieces not loaded before the wait (the task's later products),
        // before the input's rounding, as soon as the code reaches the product.
        let mut init = held;
        let rest = self.block_first_pieces(&l, w, need, init.len() as i64..unroll)?;
        init.extend(rest);
        let kdim = (geometry(w)?.1) * f.block_elems() as i64;
        if let Some((x8, true)) = x8 {
            let zeros: Vec<String> = (0..a.shape.len()).map(|_| self.i64c(0)).collect();
            let row = self.ptr(a, &zeros);
            self.round_row_q8(&row, a, kdim, x8)?;
        }
        let zero64 = self.i64c(0);
        let any = self.op(format!("arith.cmpi sgt, {}, {zero64} : i64", l.total));
        self.open(format!("scf.if {any} {{"));
        let one = self.i64c(1);
        let steps = l.steps.clone();
        let inputs = match x8 {
            None => Inputs::Floats(self.rotation(f, a.elem, &l.sub)?),
            Some((x8, _)) => Inputs::Rounded(x8),
        };
        let acc = self.fresh();
        let t = self.fresh();
        let res_ = self.fresh();
        let zero = self.f32c(0.0);
        let mut args = vec![format!("{acc} = {zero}")];
        let mut types = vec!["f32".to_string()];
        let mut current = Vec::new();
        for pc in &init {
            let mut names = Vec::new();
            for (v, ty) in pc.values() {
                let nm = self.fresh();
                args.push(format!("{nm} = {v}"));
                types.push(ty.to_string());
                names.push(nm);
            }
            current.push(Piece::from_values(&names, f));
        }
        let (z_idx, one_idx) = (self.idx(0), self.idx(1));
        let steps_idx = self.op(format!("arith.index_cast {steps} : i64 to index"));
        self.open(format!(
            "{res_}:{} = scf.for {t} = {z_idx} to {steps_idx} step {one_idx} iter_args({}) -> ({}) {{",
            types.len(),
            args.join(", "),
            types.join(", ")
        ));
        let t64 = self.op(format!("arith.index_cast {t} : index to i64"));
        // The next round's loads first (the last round reloads itself, unused).
        let t1 = self.op(format!("arith.addi {t64}, {one} : i64"));
        let tl = self.op(format!("arith.subi {steps}, {one} : i64"));
        let t1 = self.op(format!("arith.minsi {t1}, {tl} : i64"));
        let next_round = self.block_round(&l, w, need, &t1, 0..unroll)?;
        let (o, valid, j) = self.block_at(&l, need, &t64);
        let z = self.i64c(0);
        let mut ai: Vec<String> = o[..a.shape.len() - 1].to_vec();
        ai.push(z);
        let row_a = self.ptr(a, &ai);
        let mut sum = acc.clone();
        for (u, pc) in current.iter().enumerate() {
            let p = self.block_piece(&l, &j, u as i64);
            let (sum_qx, sum_x) = match &inputs {
                Inputs::Rounded(x8) => {
                    let pl = self.op(format!("arith.minsi {p}, {} : i64", l.last_piece));
                    self.piece_dot_q8(f, &pc.words, &pl, kdim, x8)
                }
                Inputs::Floats(rot) => {
                    let k0 = self.piece_k0(f, &p);
                    self.piece_dot(f, &pc.words, &row_a, a, &k0, rot)
                }
            };
            let mut term = self.op(format!("arith.mulf {}, {sum_qx} : f32", pc.d));
            if let (Some(m), Some(sx)) = (&pc.m, sum_x) {
                let mt = self.op(format!("arith.mulf {m}, {sx} : f32"));
                term = self.op(format!("arith.addf {term}, {mt} : f32"));
            }
            if split.masked {
                let inside = self.op(format!("arith.cmpi sle, {p}, {} : i64", l.last_piece));
                term = self.op(format!("arith.select {inside}, {term}, {zero} : f32"));
            }
            sum = self.op(format!("arith.addf {sum}, {term} : f32"));
        }
        let il = self.i64c(inner - 1);
        let end = self.op(format!("arith.cmpi eq, {j}, {il} : i64"));
        self.open(format!("scf.if {end} {{"));
        let row_sum = self.lanes_combine(sum.clone(), lanes, false);
        let zi = self.idx(0);
        let lead = self.op(format!("arith.cmpi eq, {}, {zi} : index", l.sub));
        let st = self.op(format!("arith.andi {valid}, {lead} : i1"));
        self.open(format!("scf.if {st} {{"));
        self.store(res, &o, &row_sum)?;
        self.close("}");
        self.close("}");
        let carried = self.op(format!("arith.select {end}, {zero}, {sum} : f32"));
        let mut yields = vec![carried];
        let mut ytypes = vec!["f32".to_string()];
        for pc in &next_round {
            for (v, ty) in pc.values() {
                yields.push(v);
                ytypes.push(ty.to_string());
            }
        }
        self.line(format!(
            "scf.yield {} : {}",
            yields.join(", "),
            ytypes.join(", ")
        ));
        self.close("}");
        self.close("}");
        Ok(())
    }

    /// `2^23 + u` as f32 from an integer `u` < 2^23 in the low bits of an i32 (or-ed into the
    /// mantissa of 2^23), less `bias`: `u - bias` exactly, in two full-rate instructions
    /// instead of a quarter-rate conversion.
    fn small_int_to_f32(&mut self, u: &str, bias: f64) -> String {
        let magic = self.op("arith.constant 1258291200 : i32"); // 0x4B000000: 2^23
        let m = self.op(format!("arith.ori {u}, {magic} : i32"));
        let f = self.op(format!("arith.bitcast {m} : i32 to f32"));
        let b = self.f32c(8388608.0 + bias);
        self.op(format!("arith.subf {f}, {b} : f32"))
    }

    /// The lane's [`Rotation`] for pieces of format `f` whose inputs are `x_elem`s, `sub` its
    /// index in its group of lanes (consecutive pieces).
    fn rotation(
        &mut self,
        f: BlockFormat,
        x_elem: ElemType,
        sub: &str,
    ) -> Result<Rotation, String> {
        let per_chunk = 16 / x_elem.bytes() as i64;
        let values = if f == BlockFormat::Q8_0 { 16 } else { 32 };
        let chunks = values / per_chunk;
        // A 4-bit piece's values 0..16 are the low nibbles of its bytes, 16..32 the high ones.
        let halves = if f == BlockFormat::Q8_0 { 1 } else { 2 };
        let per_half = chunks / halves;
        let words_per_chunk = 4 / per_half;
        if !(2..=8).contains(&chunks) || words_per_chunk * per_half != 4 {
            return Err(format!(
                "internal error: {} pieces read in {chunks} chunks",
                f.name()
            ));
        }
        // Lane `sub`'s piece starts `sub * chunks` chunks into the input; a quarter-warp
        // (8 lanes of 16-byte reads) spans 8 chunk positions of the banks when lane `sub`
        // starts at chunk (sub / (8 / chunks)) % chunks.
        let s = self.op(format!("arith.index_cast {sub} : index to i32"));
        let spread = self.op(format!("arith.constant {} : i32", 8 / chunks));
        let r = self.op(format!("arith.divui {s}, {spread} : i32"));
        let cm = self.op(format!("arith.constant {} : i32", chunks - 1));
        let r = self.op(format!("arith.andi {r}, {cm} : i32"));
        // Chunk j ^ r holds the values that chunk j would with the words permuted by
        // `word_xor` and, for 4-bit pieces, the nibbles swapped when `high_xor` is set.
        let pm = self.op(format!("arith.constant {} : i32", per_half - 1));
        let wx = self.op(format!("arith.andi {r}, {pm} : i32"));
        let wpc = self.op(format!("arith.constant {words_per_chunk} : i32"));
        let word_xor = self.op(format!("arith.muli {wx}, {wpc} : i32"));
        let ph = self.op(format!(
            "arith.constant {} : i32",
            per_half.trailing_zeros()
        ));
        let high_xor = self.op(format!("arith.shrui {r}, {ph} : i32"));
        // Byte offsets of chunks j ^ r, and the nibble shifts of bytes' low and high halves.
        let sixteen = self.op("arith.constant 16 : i32");
        let mut offsets = Vec::new();
        for j in 0..chunks {
            let jc = self.op(format!("arith.constant {j} : i32"));
            let c = self.op(format!("arith.xori {r}, {jc} : i32"));
            let o = self.op(format!("arith.muli {c}, {sixteen} : i32"));
            offsets.push(self.op(format!("arith.extui {o} : i32 to i64")));
        }
        let four = self.op("arith.constant 4 : i32");
        let lo = self.op(format!("arith.muli {high_xor}, {four} : i32"));
        let hi = self.op(format!("arith.subi {four}, {lo} : i32"));
        let mut word_bits = Vec::new();
        for b in [1i64, 2] {
            if b < words_per_chunk * per_half && b >= words_per_chunk {
                let bc = self.op(format!("arith.constant {b} : i32"));
                let bit = self.op(format!("arith.andi {word_xor}, {bc} : i32"));
                let zero = self.op("arith.constant 0 : i32");
                word_bits.push((
                    b as usize,
                    self.op(format!("arith.cmpi ne, {bit}, {zero} : i32")),
                ));
            }
        }
        let mut shifts = Vec::new();
        for byte in 0..4 {
            let base = self.op(format!("arith.constant {} : i32", 8 * byte));
            shifts.push([
                self.op(format!("arith.addi {base}, {lo} : i32")),
                self.op(format!("arith.addi {base}, {hi} : i32")),
            ]);
        }
        Ok(Rotation {
            chunks,
            per_chunk,
            offsets,
            word_bits,
            shifts,
        })
    }

    /// A 16-byte piece of quantized values (as 4 words) times its inputs, from `k0` on:
    /// Σ q·x (Q4_0's q less 8, Q8_0's signed), and for Q4_1 Σ x (its minimum's factor).
    /// A Q8_0 piece holds 16 int8s; a 4-bit one 32 values, byte t value t in its low nibble
    /// and value t + 16 in its high one. The inputs are read in the lane's rotated chunk
    /// order; a partial sum per 8 inputs keeps the chains of dependent adds short.
    fn piece_dot(
        &mut self,
        f: BlockFormat,
        words: &str,
        a: &str,
        a_of: &View,
        k0: &str,
        rot: &Rotation,
    ) -> (String, Option<String>) {
        let mut w: Vec<String> = (0..4).map(|i| self.extract_word(words, i)).collect();
        for (bit, set) in &rot.word_bits {
            let swapped: Vec<String> = (0..4)
                .map(|i| {
                    self.op(format!(
                        "arith.select {set}, {}, {} : i32",
                        w[i ^ bit],
                        w[i]
                    ))
                })
                .collect();
            w = swapped;
        }
        let (sp, at) = (
            a_of.space,
            if a_of.elem == ElemType::BF16 {
                "bf16"
            } else {
                "f32"
            },
        );
        let ab = self.i64c(a_of.elem.bytes() as i64);
        let base = self.op(format!("arith.muli {k0}, {ab} : i64"));
        let (q8, with_min) = (f == BlockFormat::Q8_0, f == BlockFormat::Q4_1);
        let bias = match f {
            BlockFormat::Q8_0 => 128.0,
            BlockFormat::Q4_0 => 8.0,
            _ => 0.0,
        };
        let (c15, c255, c128) = (
            self.op("arith.constant 15 : i32"),
            self.op("arith.constant 255 : i32"),
            self.op("arith.constant 128 : i32"),
        );
        let mut sums = Vec::new();
        let mut sums_x = Vec::new();
        let (mut sum, mut sum_x) = (self.f32c(0.0), self.f32c(0.0));
        for j in 0..rot.chunks {
            let o = self.op(format!(
                "arith.addi {base}, {} : i64",
                rot.offsets[j as usize]
            ));
            let ap = self.op(format!(
                "llvm.getelementptr {a}[{o}] : (!llvm.ptr<{sp}>, i64) -> !llvm.ptr<{sp}>, i8"
            ));
            let n = rot.per_chunk;
            let xv = self.op(format!(
                "llvm.load {ap} {{alignment = 16 : i64}} : !llvm.ptr<{sp}> -> vector<{n}x{at}>"
            ));
            let xf = if a_of.elem == ElemType::BF16 {
                self.op(format!("arith.extf {xv} : vector<8xbf16> to vector<8xf32>"))
            } else {
                xv
            };
            for e in 0..n {
                // Value v of the piece as if this were chunk j (the words and nibbles
                // permuted to match the chunk read).
                let v = j * n + e;
                let q = if q8 {
                    let sh = self.op(format!("arith.constant {} : i32", 8 * (v % 4)));
                    let b = self.op(format!("arith.shrui {}, {sh} : i32", w[(v / 4) as usize]));
                    let b = self.op(format!("arith.andi {b}, {c255} : i32"));
                    // Its sign bit flipped: q + 128 in 0..256.
                    self.op(format!("arith.xori {b}, {c128} : i32"))
                } else {
                    let (byte, high) = (v % 16, (v >= 16) as usize);
                    let sh = &rot.shifts[(byte % 4) as usize][high];
                    let b = self.op(format!(
                        "arith.shrui {}, {sh} : i32",
                        w[(byte / 4) as usize]
                    ));
                    self.op(format!("arith.andi {b}, {c15} : i32"))
                };
                let qf = self.small_int_to_f32(&q, bias);
                let ec = self.op(format!("arith.constant {e} : i32"));
                let x = self.op(format!(
                    "llvm.extractelement {xf}[{ec} : i32] : vector<{n}xf32>"
                ));
                // A fused multiply-add: arith's mulf and addf lower to mul.rn and add.rn,
                // which ptxas may not contract.
                sum = self.op(format!(
                    "llvm.intr.fma({qf}, {x}, {sum}) : (f32, f32, f32) -> f32"
                ));
                if with_min {
                    sum_x = self.op(format!("arith.addf {sum_x}, {x} : f32"));
                }
                if (v + 1) % 8 == 0 {
                    sums.push(std::mem::replace(&mut sum, self.f32c(0.0)));
                    sums_x.push(std::mem::replace(&mut sum_x, self.f32c(0.0)));
                }
            }
        }
        let total = self.add_tree(&sums);
        let total_x = with_min.then(|| self.add_tree(&sums_x));
        (total, total_x)
    }

    /// The sum of `v` (a power-of-two count) as a balanced tree.
    fn add_tree(&mut self, v: &[String]) -> String {
        if v.len() == 1 {
            return v[0].clone();
        }
        let (l, r) = v.split_at(v.len() / 2);
        let (l, r) = (self.add_tree(l), self.add_tree(r));
        self.op(format!("arith.addf {l}, {r} : f32"))
    }

    /// Byte `at` (an i64) past `p`, as i32 (zero-extended).
    fn byte_at(&mut self, p: &str, at: &str) -> String {
        let bp = self.op(format!(
            "llvm.getelementptr {p}[{at}] : (!llvm.ptr<1>, i64) -> !llvm.ptr<1>, i8"
        ));
        let b = self.op(format!("llvm.load {bp} : !llvm.ptr<1> -> i8"));
        self.op(format!("arith.extui {b} : i8 to i32"))
    }

    /// `v >> sh & mask` on i32, the shift and mask constants.
    fn bits(&mut self, v: &str, sh: i64, mask: i64) -> String {
        let s = self.op(format!("arith.constant {sh} : i32"));
        let m = self.op(format!("arith.constant {mask} : i32"));
        let x = self.op(format!("arith.shrui {v}, {s} : i32"));
        self.op(format!("arith.andi {x}, {m} : i32"))
    }

    /// Value `j` (an i64 in 0..256) of a Q4_K super-block: 8 sub-blocks of 32, each with a
    /// 6-bit scale and minimum (ggml's `get_scale_min_k4`); `d * sc * q - dmin * m`.
    fn q4_k_elem(&mut self, pp: &str, mp: &str, j: &str) -> String {
        let c = |g: &mut Gen, x: i64| g.i64c(x);
        let (c32, c64) = (c(self, 32), c(self, 64));
        let chunk = self.op(format!("arith.divsi {j}, {c64} : i64"));
        let within = self.op(format!("arith.remsi {j}, {c64} : i64"));
        let l = self.op(format!("arith.remsi {within}, {c32} : i64"));
        let high = self.op(format!("arith.divsi {within}, {c32} : i64"));
        // The byte of nibbles: low nibble for the chunk's first 32 values, high for the rest.
        let at = self.op(format!("arith.muli {chunk}, {c32} : i64"));
        let at = self.op(format!("arith.addi {at}, {l} : i64"));
        let q = self.byte_at(pp, &at);
        let c4 = self.op("arith.constant 4 : i32");
        let h32 = self.op(format!("arith.trunci {high} : i64 to i32"));
        let sh = self.op(format!("arith.muli {h32}, {c4} : i32"));
        let q = self.op(format!("arith.shrui {q}, {sh} : i32"));
        let q = self.bits(&q, 0, 15);
        // Sub-block sb = 2 * chunk + high; its scale and minimum from the 12 packed bytes
        // at meta[4..16]: bytes sb, sb + 4 and (sb + 8) % 12 (= sb - 4 when sb >= 4).
        let two = c(self, 2);
        let sb = self.op(format!("arith.muli {chunk}, {two} : i64"));
        let sb = self.op(format!("arith.addi {sb}, {high} : i64"));
        let (c4i, c8, c12) = (c(self, 4), c(self, 8), c(self, 12));
        let o_a = self.op(format!("arith.addi {sb}, {c4i} : i64"));
        let o_b = self.op(format!("arith.addi {o_a}, {c4i} : i64"));
        let o_c = self.op(format!("arith.addi {sb}, {c8} : i64"));
        let o_c = self.op(format!("arith.remsi {o_c}, {c12} : i64"));
        let o_c = self.op(format!("arith.addi {o_c}, {c4i} : i64"));
        let a = self.byte_at(mp, &o_a);
        let b = self.byte_at(mp, &o_b);
        let cc = self.byte_at(mp, &o_c);
        let sc_lo = self.bits(&a, 0, 63);
        let m_lo = self.bits(&b, 0, 63);
        let bl = self.bits(&b, 0, 15);
        let ch = self.bits(&cc, 6, 3);
        let ch = self.op(format!("arith.shli {ch}, {c4} : i32"));
        let sc_hi = self.op(format!("arith.ori {bl}, {ch} : i32"));
        let bh = self.bits(&b, 4, 15);
        let ah = self.bits(&a, 6, 3);
        let ah = self.op(format!("arith.shli {ah}, {c4} : i32"));
        let m_hi = self.op(format!("arith.ori {bh}, {ah} : i32"));
        let first = self.op(format!("arith.cmpi slt, {sb}, {c4i} : i64"));
        let sc = self.op(format!("arith.select {first}, {sc_lo}, {sc_hi} : i32"));
        let m = self.op(format!("arith.select {first}, {m_lo}, {m_hi} : i32"));
        let d = self.scale_at(mp, 0);
        let dmin = self.scale_at(mp, 2);
        let scf = self.op(format!("arith.uitofp {sc} : i32 to f32"));
        let mf = self.op(format!("arith.uitofp {m} : i32 to f32"));
        let qf = self.op(format!("arith.uitofp {q} : i32 to f32"));
        let d1 = self.op(format!("arith.mulf {d}, {scf} : f32"));
        let m1 = self.op(format!("arith.mulf {dmin}, {mf} : f32"));
        let y = self.op(format!("arith.mulf {d1}, {qf} : f32"));
        self.op(format!("arith.subf {y}, {m1} : f32"))
    }

    /// Value `j` (an i64 in 0..256) of a Q6_K super-block: 4 bits from `ql`, 2 from `qh`,
    /// less 32, times `d` and its 16-value group's int8 scale (meta: 16 scales, then d).
    fn q6_k_elem(&mut self, pp: &str, mp: &str, j: &str) -> String {
        let c = |g: &mut Gen, x: i64| g.i64c(x);
        let (c2, c16, c32, c64, c128) = (
            c(self, 2),
            c(self, 16),
            c(self, 32),
            c(self, 64),
            c(self, 128),
        );
        let n = self.op(format!("arith.divsi {j}, {c128} : i64"));
        let r = self.op(format!("arith.remsi {j}, {c128} : i64"));
        let quarter = self.op(format!("arith.divsi {r}, {c32} : i64"));
        let l = self.op(format!("arith.remsi {r}, {c32} : i64"));
        // ql: byte 64n + l + 32 (quarter % 2), its high nibble for quarters 2 and 3.
        let odd = self.op(format!("arith.remsi {quarter}, {c2} : i64"));
        let at = self.op(format!("arith.muli {n}, {c64} : i64"));
        let at = self.op(format!("arith.addi {at}, {l} : i64"));
        let o32 = self.op(format!("arith.muli {odd}, {c32} : i64"));
        let at = self.op(format!("arith.addi {at}, {o32} : i64"));
        let ql = self.byte_at(pp, &at);
        let upper = self.op(format!("arith.divsi {quarter}, {c2} : i64"));
        let u32v = self.op(format!("arith.trunci {upper} : i64 to i32"));
        let c4 = self.op("arith.constant 4 : i32");
        let sh = self.op(format!("arith.muli {u32v}, {c4} : i32"));
        let lo = self.op(format!("arith.shrui {ql}, {sh} : i32"));
        let lo = self.bits(&lo, 0, 15);
        // qh: byte 128 + 32n + l, bits 2 * quarter.
        let at = self.op(format!("arith.muli {n}, {c32} : i64"));
        let at = self.op(format!("arith.addi {at}, {l} : i64"));
        let at = self.op(format!("arith.addi {at}, {c128} : i64"));
        let qh = self.byte_at(pp, &at);
        let q32 = self.op(format!("arith.trunci {quarter} : i64 to i32"));
        let two = self.op("arith.constant 2 : i32");
        let sh = self.op(format!("arith.muli {q32}, {two} : i32"));
        let hi = self.op(format!("arith.shrui {qh}, {sh} : i32"));
        let hi = self.bits(&hi, 0, 3);
        let hi = self.op(format!("arith.shli {hi}, {c4} : i32"));
        let q = self.op(format!("arith.ori {lo}, {hi} : i32"));
        let c32i = self.op("arith.constant 32 : i32");
        let q = self.op(format!("arith.subi {q}, {c32i} : i32"));
        // Scale 8n + l / 16 + 2 * quarter, an int8.
        let c8 = c(self, 8);
        let at = self.op(format!("arith.muli {n}, {c8} : i64"));
        let is = self.op(format!("arith.divsi {l}, {c16} : i64"));
        let at = self.op(format!("arith.addi {at}, {is} : i64"));
        let q2 = self.op(format!("arith.muli {quarter}, {c2} : i64"));
        let at = self.op(format!("arith.addi {at}, {q2} : i64"));
        let sp = self.op(format!(
            "llvm.getelementptr {mp}[{at}] : (!llvm.ptr<1>, i64) -> !llvm.ptr<1>, i8"
        ));
        let sc = self.op(format!("llvm.load {sp} : !llvm.ptr<1> -> i8"));
        let scf = self.op(format!("arith.sitofp {sc} : i8 to f32"));
        let d = self.scale_at(mp, 16);
        let qf = self.op(format!("arith.sitofp {q} : i32 to f32"));
        let ds = self.op(format!("arith.mulf {d}, {scf} : f32"));
        self.op(format!("arith.mulf {ds}, {qf} : f32"))
    }

    pub(crate) fn extract_word(&mut self, words: &str, i: i64) -> String {
        let c = self.op(format!("arith.constant {i} : i32"));
        self.op(format!(
            "llvm.extractelement {words}[{c} : i32] : vector<4xi32>"
        ))
    }
}
