//! `kernel`: the megakernel's plan, what `select-kernels` decides and the generator renders.
//! A `kernel.plan` op next to the `task.graph` holds the kernel-wide settings and, per task
//! code (the tasks that share one piece of the kernel), what each op of the code's slice
//! does: where its result and its temporaries live, and the algorithm it runs.
//!
//! ```text
//! "kernel.plan"() ({
//!   "kernel.code"() ({
//!     "kernel.op"() {index = 1 : i64, name = "tg.rms_norm", result = #kernel.place<shared, 0, 512>,
//!         temps = [#kernel.place<shared, 512, 16>, #kernel.place<shared, 528, 64>,
//!                  #kernel.place<shared, 592, 256>], stats = "cta", weight = "staged"} : () -> ()
//!     "kernel.op"() {index = 2 : i64, name = "tg.matmul", result = #kernel.place<direct>,
//!         matvec = "row", unroll = 4 : i64} : () -> ()
//!   }) {id = 0 : i64, task = 3 : i64, kind = "qkv_rope", smem = 848 : i64, scratch = 0 : i64} : () -> ()
//! }) {threads = 512 : i64, registers = 128 : i64, ...} : () -> ()
//! ```
//!
//! - `kernel.plan`: threads per CTA, registers per thread (0: ptxas decides), the L2
//!   prefetch (bytes, and whose: `own` or `next`), the weight ring (slots and slot bytes; 0
//!   slots: none), the shared-memory budget of a task's scratch, how weights load
//!   (`evict-first` or `normal`), how events order memory (`release-acquire` or `fences`),
//!   how a task polls its counters (`parallel` or `serial`).
//! - `kernel.code`: code `id`, the first task that runs it (`task`) and its kind, the bytes
//!   of shared (`smem`) and global (`scratch`) scratch it takes, and `direct` when its last
//!   op stores straight to the tile.
//! - `kernel.op`: op number `index` of the group's body: `result` and `temps` are places
//!   (`direct`: the tile itself; `view`: the operand's elements, reshaped; `shared` or
//!   `global`, offset and bytes, and `window` when only the code's largest box is kept);
//!   the other attributes are the op's choices: a matrix-vector product's path (`matvec`:
//!   `ring`, `rows`, `row`, `lanes`, `blocks` or `dp4a`), its rows per warp, unroll and the
//!   16-byte loads a lane issues before the wait (`preload`), and the other product of
//!   the same input row over the same rows that runs in one loop with it (`with`); a
//!   norm's statistics (`cta` or `warps`) and weight (`staged` or `global`); attention's
//!   algorithm (`online` or `rounds`), how the rounds load K and V (`group`: one load for a
//!   KV head's query heads, `vector`: 16 bytes a load, `scalar`) and the output lanes a warp
//!   takes.

use crate::attr::{Attr, Attrs};
use crate::ir::{Body, OpId, OpSpec};
use crate::registry::{AttrKind, Registry};
use crate::types::ElemType;

/// The dialect's op kinds (in a module of their own: the graph's own types share their names).
pub mod ops {
    crate::op_kinds! {
        /// The kernel's choices for a whole task graph.
        Plan = "kernel.plan",
        /// The choices of one task code.
        Code = "kernel.code",
        /// What one op of a code's slice does.
        Op = "kernel.op",
    }
}

pub fn register(r: &mut Registry) {
    r.op(
        ops::Plan::NAME,
        "the megakernel's settings and its codes' choices",
    )
    .regions(1)
    .attr("threads", AttrKind::Int)
    .attr("registers", AttrKind::Int)
    .attr("prefetch_bytes", AttrKind::Int)
    .attr("prefetch", AttrKind::Str)
    .attr("ring_slots", AttrKind::Int)
    .attr("ring_slot_bytes", AttrKind::Int)
    .attr("smem_scratch", AttrKind::Int)
    .attr("weight_loads", AttrKind::Str)
    .attr("events", AttrKind::Str)
    .attr("waits", AttrKind::Str)
    .attr("poll_sleep", AttrKind::Int)
    .attr("inputs", AttrKind::Str)
    .attr("thread_number", AttrKind::Str)
    .attr("extents", AttrKind::Str)
    .optional_attr("trace_mark", AttrKind::Str)
    .optional_attr("light_inputs", AttrKind::Str)
    .verify_nested(|body, op| KernelPlan::parse(body, op).map(|_| ()));
    r.op(ops::Code::NAME, "the choices of one task code")
        .regions(1)
        .attr("id", AttrKind::Int)
        .attr("task", AttrKind::Int)
        .attr("kind", AttrKind::Str)
        .attr("smem", AttrKind::Int)
        .attr("scratch", AttrKind::Int)
        .optional_attr("direct", AttrKind::Bool)
        .verify(|body, op| inside(body, op, ops::Plan::NAME));
    r.op(ops::Op::NAME, "what one op of a code's slice does")
        .attr("index", AttrKind::Int)
        .attr("name", AttrKind::Str)
        .attr("result", AttrKind::Any)
        .optional_attr("temps", AttrKind::Array)
        .verify(|body, op| inside(body, op, ops::Code::NAME));
}

fn inside(body: &Body, op: OpId, parent: &str) -> Result<(), String> {
    match body.parent_op(op) {
        Some(p) if body.ops[p].name == parent => Ok(()),
        _ => Err(format!("must be directly inside a {parent}")),
    }
}

/// Where a value or a temporary of a task lives.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Place {
    /// The task's tile in its buffer: the op stores straight to it.
    Direct,
    /// The operand's elements under another shape: no copy.
    View,
    /// Task scratch: shared memory or the CTA's region of global memory, at `offset` for
    /// `bytes`; `window`: only the code's largest box of the value is kept.
    Scratch {
        shared: bool,
        offset: u64,
        bytes: u64,
        window: bool,
    },
}

impl Place {
    fn to_attr(&self) -> Attr {
        let body = match self {
            Place::Direct => "place<direct>".to_string(),
            Place::View => "place<view>".to_string(),
            Place::Scratch {
                shared,
                offset,
                bytes,
                window,
            } => format!(
                "place<{}, {offset}, {bytes}{}>",
                if *shared { "shared" } else { "global" },
                if *window { ", window" } else { "" }
            ),
        };
        Attr::Opaque {
            dialect: "kernel".into(),
            body,
        }
    }

    fn from_attr(a: &Attr) -> Result<Place, String> {
        let body = match a {
            Attr::Opaque { dialect, body } if dialect == "kernel" => body.as_str(),
            _ => return Err(format!("expected #kernel.place<...>, found {a}")),
        };
        let inner = body
            .strip_prefix("place<")
            .and_then(|b| b.strip_suffix('>'))
            .ok_or_else(|| format!("expected #kernel.place<...>, found #kernel.{body}"))?;
        let items: Vec<&str> = inner.split(',').map(str::trim).collect();
        let num = |s: &str| {
            s.parse::<u64>()
                .map_err(|_| format!("#kernel.{body}: '{s}' is not a byte count"))
        };
        match items[..] {
            ["direct"] => Ok(Place::Direct),
            ["view"] => Ok(Place::View),
            [space @ ("shared" | "global"), offset, bytes, ref rest @ ..] => {
                let window = match rest {
                    [] => false,
                    ["window"] => true,
                    _ => {
                        return Err(format!(
                            "#kernel.{body}: expected 'window' or nothing after the bytes"
                        ))
                    }
                };
                Ok(Place::Scratch {
                    shared: space == "shared",
                    offset: num(offset)?,
                    bytes: num(bytes)?,
                    window,
                })
            }
            _ => Err(format!(
                "#kernel.{body}: expected direct, view, or shared|global, offset, bytes[, window]"
            )),
        }
    }
}

/// How a matrix-vector product runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MatvecPath {
    /// Weight rows streamed through the shared-memory ring by bulk copies.
    Ring,
    /// A warp per group of rows, 16-byte weight loads, each input block loaded once.
    Rows,
    /// A warp per row, 16-byte weight loads.
    Row,
    /// A warp per row, its lanes taking one element at a time (any layout).
    Lanes,
    /// A warp per row of a block-quantized weight, a lane 16 bytes of quantized values and
    /// their block's scales at a time, dequantized in registers.
    Blocks,
    /// As `Blocks`, on the activation rounded to 8 bits (`act_q8`): integer dot products
    /// (`dp4a`) of the quantized values and the rounded activation, scaled per block.
    Dp4a,
}

/// How decode attention runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AttentionAlgorithm {
    /// One pass of online softmax over blocks of 8 positions, a KV head's query heads at once.
    Online,
    /// Three rounds: the scores, their max and sum, then the output.
    Rounds,
}

/// How the rounds of attention load a cache.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KvLoads {
    /// 16 bytes (8 positions) a load, each load serving every query head of a KV head.
    Group,
    /// 16 bytes (8 positions) a load.
    Vector,
    /// An element a load.
    Scalar,
}

/// The algorithm an op runs, where it has a choice.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Choice {
    None,
    Matvec {
        path: MatvecPath,
        /// Rows a warp takes (the `rows` path).
        rows: u32,
        /// 16-byte loads a lane issues a round (the `rows` and `row` paths).
        unroll: u32,
        /// 16-byte weight loads a lane issues before the task's wait (0: none): blocks of 256
        /// bf16 weights (`row`), or the pieces of the loop's first round (`blocks`, `dp4a`).
        preload: u32,
        /// The other product of the same input row over the same rows that runs in this
        /// one's loop (`row`), by its index: on the first of the pair, the second's, whose
        /// result the first computes; on the second, the first's.
        with: Option<u32>,
    },
    Norm {
        /// One row's statistics by the whole CTA, or a warp a row.
        cta: bool,
        /// The weight copied into shared memory beside the sum of squares.
        staged: bool,
    },
    Attention {
        algorithm: AttentionAlgorithm,
        scores: KvLoads,
        values: KvLoads,
        /// Output lanes a warp computes.
        lanes: u32,
    },
    /// A split-K part of a `tg.matmul_acc`.
    SplitK {
        /// 16-byte weight loads a thread copies into shared memory before the task's wait:
        /// the first of its loop's first round.
        preload: u32,
    },
}

/// What one op of a code's slice does.
#[derive(Clone, Debug, PartialEq)]
pub struct OpPlan {
    /// The op's position in its group's body.
    pub index: usize,
    pub name: String,
    pub result: Place,
    /// The op's temporaries, in the order it takes them.
    pub temps: Vec<Place>,
    pub choice: Choice,
}

/// The choices of one task code.
#[derive(Clone, Debug, PartialEq)]
pub struct CodePlan {
    /// The first task (in program order) that runs this code.
    pub task: usize,
    pub kind: String,
    /// Bytes of shared and of global scratch the code takes.
    pub smem: u64,
    pub scratch: u64,
    /// Its last op stores straight to the tile.
    pub direct: bool,
    pub ops: Vec<OpPlan>,
}

/// The kernel-wide settings.
#[derive(Clone, Debug, PartialEq)]
pub struct KernelConfig {
    pub threads: u32,
    /// Registers per thread ptxas may use (0: ptxas decides).
    pub registers: u32,
    /// Bytes of weights each task asks into L2 before its wait (0: none).
    pub prefetch_bytes: u64,
    /// The next task's in the SM's queue, or the task's own.
    pub prefetch_next: bool,
    /// The weight ring: slots (0: none) and bytes a slot.
    pub ring_slots: u32,
    pub ring_slot_bytes: u32,
    /// Bytes of shared memory a task's scratch may take.
    pub smem_scratch: u64,
    /// Weights load with an L2 evict-first policy and no L1 allocation.
    pub weights_evict_first: bool,
    /// Events order memory with explicit fences (else release adds and acquire loads).
    pub event_fences: bool,
    /// A task polls its counters a thread each, all at once (else thread 0 in turn).
    pub parallel_waits: bool,
    /// Nanoseconds a polling thread sleeps between two loads of a counter (0: none).
    pub poll_sleep_ns: u32,
    /// A task loads the scalars it reads from buffers no task of the step writes (the
    /// step's position) before its wait (else where its ops use them, after the wait).
    pub early_inputs: bool,
    /// Each pass of the queue loop reads the thread's number plus a volatile load of a
    /// shared word that holds 0 (else an opaque `mov` of `%tid.x`, whose arithmetic ptxas
    /// hoists out of the loop).
    pub opaque_thread_number: bool,
    /// Where a code's box extents come from.
    pub extents: BoxExtents,
    /// Where a traced task stamps the end of its wait instead (`None`: after the wait).
    pub trace_mark: Option<TraceMark>,
    /// After its wait, a task asks into L1 the small inputs in global memory that the light
    /// ops after its first (norms, rope) read (`light_inputs = "prefetch"`), so their loads
    /// do not each wait a round trip to L2 in turn.
    pub prefetch_light_inputs: bool,
}

/// Where the extents of a code's boxes come from (the plan's `extents`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BoxExtents {
    /// Every bound is a word of the task's record.
    Record,
    /// An extent every task of a code shares is a constant of the code.
    Constant,
    /// As `Constant`, and the tasks of one key whose extents differ (rows split unevenly)
    /// get a code for each set of extents.
    Split,
}

impl BoxExtents {
    const ALL: [BoxExtents; 3] = [BoxExtents::Record, BoxExtents::Constant, BoxExtents::Split];
    /// The names, in the order of the variants.
    pub const NAMES: [&'static str; 3] = ["record", "constant", "split"];

    pub fn name(self) -> &'static str {
        Self::NAMES[self as usize]
    }

    pub fn parse(s: &str) -> Result<BoxExtents, String> {
        Self::ALL
            .into_iter()
            .find(|e| e.name() == s)
            .ok_or_else(|| format!("box extents come from record, constant or split, not '{s}'"))
    }
}

/// A point inside a task's code where, with `--trace-mark`, the profile's second stamp (the
/// end of the task's wait) is taken instead: the trace's work slice then starts there, and
/// its wait slice holds what came before (the wait, and the code up to the point). Where a
/// code passes the point more than once, the last pass's stamp stays.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TraceMark {
    /// The end of attention's scores round (the `rounds` algorithm).
    AttentionScores,
    /// The end of attention's round of each row's max and sum (`rounds`).
    AttentionStats,
    /// The end of a `dp4a` product's rounding of its input row to 8 bits.
    InputRounded,
    /// The end of op N of a task's code (its ops in order from 0, after the barrier that
    /// follows the op); codes with fewer ops take no mark.
    AfterOp(u32),
}

impl TraceMark {
    pub const ALL: [TraceMark; 3] = [
        TraceMark::AttentionScores,
        TraceMark::AttentionStats,
        TraceMark::InputRounded,
    ];

    pub fn name(self) -> String {
        match self {
            TraceMark::AttentionScores => "attention-scores".into(),
            TraceMark::AttentionStats => "attention-stats".into(),
            TraceMark::InputRounded => "input-rounded".into(),
            TraceMark::AfterOp(n) => format!("op-{n}"),
        }
    }

    /// The mark named `s` (`""`: none).
    pub fn parse(s: &str) -> Result<Option<TraceMark>, String> {
        if s.is_empty() {
            return Ok(None);
        }
        if let Some(n) = s.strip_prefix("op-").and_then(|n| n.parse::<u32>().ok()) {
            return Ok(Some(TraceMark::AfterOp(n)));
        }
        TraceMark::ALL
            .into_iter()
            .find(|m| m.name() == s)
            .map(Some)
            .ok_or_else(|| {
                let names: Vec<String> = TraceMark::ALL.iter().map(|m| m.name()).collect();
                format!(
                    "a trace mark is one of {} or op-N (N a code's op), not '{s}'",
                    names.join(", ")
                )
            })
    }
}

/// The megakernel's plan: its settings and, per code (numbered by position), its choices.
#[derive(Clone, Debug, PartialEq)]
pub struct KernelPlan {
    pub config: KernelConfig,
    pub codes: Vec<CodePlan>,
}

/// The ops of `op`'s region (none when it has no block: an empty region prints as `({})`).
fn ops_of(body: &Body, op: OpId) -> &[OpId] {
    match body.entry_block(op, 0) {
        Some(b) => &body.blocks[b].ops,
        None => &[],
    }
}

fn int(v: u64) -> Attr {
    Attr::Int(v as i64, ElemType::I64)
}

fn get_int(a: &Attrs, k: &str) -> Result<u64, String> {
    match a.get(k) {
        Some(Attr::Int(v, _)) if *v >= 0 => Ok(*v as u64),
        Some(other) => Err(format!("'{k}' must be a count, not {other}")),
        None => Err(format!("requires '{k}'")),
    }
}

fn get_str<'a>(a: &'a Attrs, k: &str) -> Result<&'a str, String> {
    a.get(k)
        .and_then(Attr::as_str)
        .ok_or_else(|| format!("requires string attribute '{k}'"))
}

/// `yes` or `no` by name, an error naming both otherwise.
fn either(a: &Attrs, k: &str, yes: &str, no: &str) -> Result<bool, String> {
    match get_str(a, k)? {
        s if s == yes => Ok(true),
        s if s == no => Ok(false),
        s => Err(format!("'{k}' must be \"{yes}\" or \"{no}\", not \"{s}\"")),
    }
}

fn small(v: u64, k: &str) -> Result<u32, String> {
    u32::try_from(v).map_err(|_| format!("'{k}' {v} is out of range"))
}

impl Choice {
    fn attrs(&self) -> Vec<(&'static str, Attr)> {
        let s = |x: &str| Attr::Str(x.to_string());
        let loads = |l: KvLoads| {
            s(match l {
                KvLoads::Group => "group",
                KvLoads::Vector => "vector",
                KvLoads::Scalar => "scalar",
            })
        };
        match self {
            Choice::None => vec![],
            Choice::Matvec {
                path,
                rows,
                unroll,
                preload,
                with,
            } => {
                let name = match path {
                    MatvecPath::Ring => "ring",
                    MatvecPath::Rows => "rows",
                    MatvecPath::Row => "row",
                    MatvecPath::Lanes => "lanes",
                    MatvecPath::Blocks => "blocks",
                    MatvecPath::Dp4a => "dp4a",
                };
                let mut v = vec![("matvec", s(name))];
                if *path == MatvecPath::Rows {
                    v.push(("rows", int(*rows as u64)));
                }
                if matches!(path, MatvecPath::Rows | MatvecPath::Row) {
                    v.push(("unroll", int(*unroll as u64)));
                }
                if *preload > 0 {
                    v.push(("preload", int(*preload as u64)));
                }
                if let Some(w) = with {
                    v.push(("with", int(*w as u64)));
                }
                v
            }
            Choice::SplitK { preload } => vec![("split_k_preload", int(*preload as u64))],
            Choice::Norm { cta, staged } => vec![
                ("stats", s(if *cta { "cta" } else { "warps" })),
                ("weight", s(if *staged { "staged" } else { "global" })),
            ],
            Choice::Attention {
                algorithm,
                scores,
                values,
                lanes,
            } => match algorithm {
                AttentionAlgorithm::Online => vec![("attention", s("online"))],
                AttentionAlgorithm::Rounds => vec![
                    ("attention", s("rounds")),
                    ("scores", loads(*scores)),
                    ("values", loads(*values)),
                    ("lanes", int(*lanes as u64)),
                ],
            },
        }
    }

    fn from_attrs(a: &Attrs) -> Result<Choice, String> {
        let loads = |k: &str| match get_str(a, k)? {
            "group" => Ok(KvLoads::Group),
            "vector" => Ok(KvLoads::Vector),
            "scalar" => Ok(KvLoads::Scalar),
            x => Err(format!(
                "'{k}' must be \"group\", \"vector\" or \"scalar\", not \"{x}\""
            )),
        };
        if a.get("matvec").is_some() {
            let path = match get_str(a, "matvec")? {
                "ring" => MatvecPath::Ring,
                "rows" => MatvecPath::Rows,
                "row" => MatvecPath::Row,
                "lanes" => MatvecPath::Lanes,
                "blocks" => MatvecPath::Blocks,
                "dp4a" => MatvecPath::Dp4a,
                x => {
                    return Err(format!(
                        "'matvec' must be \"ring\", \"rows\", \"row\", \"lanes\", \"blocks\" or \"dp4a\", not \"{x}\""
                    ))
                }
            };
            let opt = |k: &str, d: u64| match a.get(k) {
                Some(_) => get_int(a, k).and_then(|v| small(v, k)),
                None => small(d, k),
            };
            return Ok(Choice::Matvec {
                path,
                rows: opt("rows", 1)?,
                unroll: opt("unroll", 1)?,
                preload: opt("preload", 0)?,
                with: match a.get("with") {
                    Some(_) => Some(small(get_int(a, "with")?, "with")?),
                    None => None,
                },
            });
        }
        if a.get("split_k_preload").is_some() {
            let k = "split_k_preload";
            return Ok(Choice::SplitK {
                preload: small(get_int(a, k)?, k)?,
            });
        }
        if a.get("stats").is_some() {
            return Ok(Choice::Norm {
                cta: either(a, "stats", "cta", "warps")?,
                staged: either(a, "weight", "staged", "global")?,
            });
        }
        if a.get("attention").is_some() {
            return Ok(if either(a, "attention", "online", "rounds")? {
                Choice::Attention {
                    algorithm: AttentionAlgorithm::Online,
                    scores: KvLoads::Group,
                    values: KvLoads::Group,
                    lanes: 0,
                }
            } else {
                Choice::Attention {
                    algorithm: AttentionAlgorithm::Rounds,
                    scores: loads("scores")?,
                    values: loads("values")?,
                    lanes: small(get_int(a, "lanes")?, "lanes")?,
                }
            });
        }
        Ok(Choice::None)
    }
}

impl KernelPlan {
    /// The module's `kernel.plan` op, if any.
    pub fn find(body: &Body) -> Option<OpId> {
        body.blocks[body.module_block()]
            .ops
            .iter()
            .copied()
            .find(|&o| body.ops[o].name == ops::Plan::NAME)
    }

    /// Reads the module's plan.
    pub fn from_body(body: &Body) -> Result<KernelPlan, String> {
        let op = KernelPlan::find(body)
            .ok_or("the module has no kernel.plan (run the 'select-kernels' pass)")?;
        KernelPlan::parse(body, op).map_err(|(o, m)| {
            if o == op {
                m
            } else {
                format!("'{}': {m}", body.ops[o].name)
            }
        })
    }

    fn parse(body: &Body, op: OpId) -> Result<KernelPlan, (OpId, String)> {
        let a = &body.ops[op].attrs;
        let at = |m: String| (op, m);
        let config = KernelConfig {
            threads: small(get_int(a, "threads").map_err(at)?, "threads").map_err(at)?,
            registers: small(get_int(a, "registers").map_err(at)?, "registers").map_err(at)?,
            prefetch_bytes: get_int(a, "prefetch_bytes").map_err(at)?,
            prefetch_next: either(a, "prefetch", "next", "own").map_err(at)?,
            ring_slots: small(get_int(a, "ring_slots").map_err(at)?, "ring_slots").map_err(at)?,
            ring_slot_bytes: small(
                get_int(a, "ring_slot_bytes").map_err(at)?,
                "ring_slot_bytes",
            )
            .map_err(at)?,
            smem_scratch: get_int(a, "smem_scratch").map_err(at)?,
            weights_evict_first: either(a, "weight_loads", "evict-first", "normal").map_err(at)?,
            event_fences: either(a, "events", "fences", "release-acquire").map_err(at)?,
            parallel_waits: either(a, "waits", "parallel", "serial").map_err(at)?,
            poll_sleep_ns: small(get_int(a, "poll_sleep").map_err(at)?, "poll_sleep")
                .map_err(at)?,
            early_inputs: either(a, "inputs", "before-wait", "after-wait").map_err(at)?,
            opaque_thread_number: either(a, "thread_number", "loaded", "mov").map_err(at)?,
            extents: BoxExtents::parse(get_str(a, "extents").map_err(at)?).map_err(at)?,
            trace_mark: match a.get("trace_mark") {
                Some(_) => TraceMark::parse(get_str(a, "trace_mark").map_err(at)?).map_err(at)?,
                None => None,
            },
            prefetch_light_inputs: match a.get("light_inputs") {
                Some(_) => match get_str(a, "light_inputs").map_err(at)? {
                    "prefetch" => true,
                    other => {
                        return Err(at(format!(
                            "light_inputs must be \"prefetch\" (or absent), not '{other}'"
                        )))
                    }
                },
                None => false,
            },
        };
        let mut codes = Vec::new();
        for (i, &c) in ops_of(body, op).iter().enumerate() {
            let code = CodePlan::parse(body, c)?;
            if get_int(&body.ops[c].attrs, "id") != Ok(i as u64) {
                return Err((
                    c,
                    format!("codes are numbered by position: expected id {i}"),
                ));
            }
            codes.push(code);
        }
        Ok(KernelPlan { config, codes })
    }

    /// Writes the plan into the module, replacing any `kernel.plan` there.
    pub fn store(&self, body: &mut Body) {
        if let Some(old) = KernelPlan::find(body) {
            body.erase_op(old);
        }
        let c = &self.config;
        let s = |x: &str| Attr::Str(x.to_string());
        let module = body.module_block();
        let plan = body.build(
            module,
            OpSpec::new(ops::Plan::NAME)
                .regions(1)
                .attr("threads", int(c.threads as u64))
                .attr("registers", int(c.registers as u64))
                .attr("prefetch_bytes", int(c.prefetch_bytes))
                .attr("prefetch", s(if c.prefetch_next { "next" } else { "own" }))
                .attr("ring_slots", int(c.ring_slots as u64))
                .attr("ring_slot_bytes", int(c.ring_slot_bytes as u64))
                .attr("smem_scratch", int(c.smem_scratch))
                .attr("poll_sleep", int(c.poll_sleep_ns as u64))
                .attr(
                    "weight_loads",
                    s(if c.weights_evict_first {
                        "evict-first"
                    } else {
                        "normal"
                    }),
                )
                .attr(
                    "events",
                    s(if c.event_fences {
                        "fences"
                    } else {
                        "release-acquire"
                    }),
                )
                .attr(
                    "waits",
                    s(if c.parallel_waits {
                        "parallel"
                    } else {
                        "serial"
                    }),
                )
                .attr(
                    "inputs",
                    s(if c.early_inputs {
                        "before-wait"
                    } else {
                        "after-wait"
                    }),
                )
                .attr(
                    "thread_number",
                    s(if c.opaque_thread_number {
                        "loaded"
                    } else {
                        "mov"
                    }),
                )
                .attr("extents", s(c.extents.name())),
        );
        if let Some(m) = c.trace_mark {
            body.ops[plan].attrs.set("trace_mark", s(&m.name()));
        }
        if c.prefetch_light_inputs {
            body.ops[plan].attrs.set("light_inputs", s("prefetch"));
        }
        let region = body.ops[plan].regions[0];
        let block = body.append_block(region, &[]);
        for (id, code) in self.codes.iter().enumerate() {
            code.store(body, block, id);
        }
    }
}

impl CodePlan {
    fn parse(body: &Body, op: OpId) -> Result<CodePlan, (OpId, String)> {
        let a = &body.ops[op].attrs;
        let at = |m: String| (op, m);
        let mut ops = Vec::new();
        for &o in ops_of(body, op) {
            ops.push(OpPlan::parse(body, o).map_err(|m| (o, m))?);
        }
        check_pairs(&ops).map_err(|(i, m)| (ops_of(body, op)[i], m))?;
        Ok(CodePlan {
            task: get_int(a, "task").map_err(at)? as usize,
            kind: get_str(a, "kind").map_err(at)?.to_string(),
            smem: get_int(a, "smem").map_err(at)?,
            scratch: get_int(a, "scratch").map_err(at)?,
            direct: matches!(a.get("direct"), Some(Attr::Bool(true))),
            ops,
        })
    }

    fn store(&self, body: &mut Body, block: crate::ir::BlockId, id: usize) {
        let mut spec = OpSpec::new(ops::Code::NAME)
            .regions(1)
            .attr("id", int(id as u64))
            .attr("task", int(self.task as u64))
            .attr("kind", Attr::Str(self.kind.clone()))
            .attr("smem", int(self.smem))
            .attr("scratch", int(self.scratch));
        if self.direct {
            spec = spec.attr("direct", Attr::Bool(true));
        }
        let code = body.build(block, spec);
        let region = body.ops[code].regions[0];
        let inner = body.append_block(region, &[]);
        for o in &self.ops {
            let mut spec = OpSpec::new(ops::Op::NAME)
                .attr("index", int(o.index as u64))
                .attr("name", Attr::Str(o.name.clone()))
                .attr("result", o.result.to_attr());
            if !o.temps.is_empty() {
                spec = spec.attr(
                    "temps",
                    Attr::Array(o.temps.iter().map(Place::to_attr).collect()),
                );
            }
            for (k, v) in o.choice.attrs() {
                spec = spec.attr(k, v);
            }
            body.build(inner, spec);
        }
    }
}

/// Products run in one loop (`with`) are `row` products of one code naming each other.
fn check_pairs(ops: &[OpPlan]) -> Result<(), (usize, String)> {
    let with_of = |p: &OpPlan| match p.choice {
        Choice::Matvec { with, path, .. } => with.map(|w| (w as usize, path)),
        _ => None,
    };
    for (i, p) in ops.iter().enumerate() {
        let Some((w, path)) = with_of(p) else {
            continue;
        };
        let err = |m: String| Err((i, m));
        if path != MatvecPath::Row {
            return err(format!(
                "a product runs in another's loop ('with') on the \"row\" path only, not {path:?}"
            ));
        }
        let Some(j) = ops.iter().position(|q| q.index == w) else {
            return err(format!(
                "'with' names op #{w}, which the code does not have"
            ));
        };
        if j == i || with_of(&ops[j]) != Some((p.index, MatvecPath::Row)) {
            return err(format!(
                "'with' names op #{w}, which must be a \"row\" product naming op #{} back",
                p.index
            ));
        }
    }
    Ok(())
}

impl OpPlan {
    fn parse(body: &Body, op: OpId) -> Result<OpPlan, String> {
        let a = &body.ops[op].attrs;
        let temps = match a.get("temps") {
            Some(Attr::Array(items)) => items
                .iter()
                .map(Place::from_attr)
                .collect::<Result<_, _>>()?,
            Some(other) => return Err(format!("'temps' must be an array, not {other}")),
            None => Vec::new(),
        };
        Ok(OpPlan {
            index: get_int(a, "index")? as usize,
            name: get_str(a, "name")?.to_string(),
            result: Place::from_attr(a.get("result").ok_or("requires 'result'")?)?,
            temps,
            choice: Choice::from_attrs(a)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_plan_prints_parses_back_and_verifies() {
        let plan = KernelPlan {
            config: KernelConfig {
                threads: 256,
                registers: 0,
                prefetch_bytes: 65536,
                prefetch_next: false,
                ring_slots: 2,
                ring_slot_bytes: 16384,
                smem_scratch: 4096,
                weights_evict_first: true,
                event_fences: true,
                parallel_waits: false,
                poll_sleep_ns: 0,
                early_inputs: true,
                opaque_thread_number: true,
                extents: BoxExtents::Split,
                trace_mark: Some(TraceMark::InputRounded),
                prefetch_light_inputs: true,
            },
            codes: vec![
                CodePlan {
                    task: 0,
                    kind: "kv_append".into(),
                    smem: 0,
                    scratch: 0,
                    direct: false,
                    ops: vec![],
                },
                CodePlan {
                    task: 7,
                    kind: "mlp".into(),
                    smem: 576,
                    scratch: 4096,
                    direct: true,
                    ops: vec![
                        OpPlan {
                            index: 0,
                            name: "tg.rms_norm".into(),
                            result: Place::Scratch {
                                shared: false,
                                offset: 0,
                                bytes: 4096,
                                window: true,
                            },
                            temps: vec![Place::Scratch {
                                shared: true,
                                offset: 512,
                                bytes: 64,
                                window: false,
                            }],
                            choice: Choice::Norm {
                                cta: true,
                                staged: false,
                            },
                        },
                        OpPlan {
                            index: 1,
                            name: "tg.matmul".into(),
                            result: Place::Direct,
                            temps: vec![],
                            choice: Choice::Matvec {
                                path: MatvecPath::Rows,
                                rows: 2,
                                unroll: 4,
                                preload: 3,
                                with: None,
                            },
                        },
                        OpPlan {
                            index: 2,
                            name: "tg.attention_partial".into(),
                            result: Place::View,
                            temps: vec![],
                            choice: Choice::Attention {
                                algorithm: AttentionAlgorithm::Rounds,
                                scores: KvLoads::Group,
                                values: KvLoads::Scalar,
                                lanes: 8,
                            },
                        },
                    ],
                },
            ],
        };
        let mut body = crate::parse_text("t.mlir", "module {}").unwrap();
        plan.store(&mut body);
        let text = crate::printer::print(&body);
        let again =
            crate::parse_text("again.mlir", &text).unwrap_or_else(|e| panic!("{e}\n{text}"));
        assert_eq!(KernelPlan::from_body(&again).unwrap(), plan);
        assert!(
            text.contains("#kernel.place<global, 0, 4096, window>"),
            "{text}"
        );
        assert!(text.contains("matvec = \"rows\""), "{text}");
    }

    #[test]
    fn bad_plans_are_clear_errors() {
        // A code of two products (op #1 and op #2) with the given extra attributes.
        let pair = |a: &str, b: &str| {
            let op = |i: u32, x: &str| {
                let x = if x.is_empty() {
                    String::new()
                } else {
                    format!(", {x}")
                };
                format!("\"kernel.op\"() {{index = {i} : i64, name = \"tg.matmul\", result = #kernel.place<shared, 0, 64>, matvec = \"row\", unroll = 1 : i64{x}}} : () -> ()\n")
            };
            format!(
                "\"kernel.plan\"() ({{\n\"kernel.code\"() ({{\n{}{}}}) {{id = 0 : i64, task = 0 : i64, kind = \"mlp\", smem = 64 : i64, scratch = 0 : i64}} : () -> ()\n}}) {{threads = 512 : i64, registers = 0 : i64, prefetch_bytes = 0 : i64, prefetch = \"own\", ring_slots = 0 : i64, ring_slot_bytes = 0 : i64, smem_scratch = 0 : i64, weight_loads = \"normal\", events = \"fences\", waits = \"serial\", poll_sleep = 32 : i64, inputs = \"after-wait\", thread_number = \"mov\", extents = \"record\"}} : () -> ()",
                op(1, a),
                op(2, b)
            )
        };
        assert!(crate::parse_text("t.mlir", &pair("with = 2 : i64", "with = 1 : i64")).is_ok());
        for (text, want) in [
            (
                "\"kernel.op\"() {index = 0 : i64, name = \"x\", result = #kernel.place<view>} : () -> ()",
                "must be directly inside a kernel.code",
            ),
            (
                "\"kernel.plan\"() ({}) {threads = 512 : i64, registers = 0 : i64, prefetch_bytes = 0 : i64, prefetch = \"sideways\", ring_slots = 0 : i64, ring_slot_bytes = 0 : i64, smem_scratch = 0 : i64, weight_loads = \"normal\", events = \"fences\", waits = \"serial\", poll_sleep = 32 : i64, inputs = \"after-wait\", thread_number = \"mov\", extents = \"record\"} : () -> ()",
                "'prefetch' must be \"next\" or \"own\"",
            ),
            (
                "\"kernel.plan\"() ({}) {threads = 512 : i64, registers = 0 : i64, prefetch_bytes = 0 : i64, prefetch = \"own\", ring_slots = 0 : i64, ring_slot_bytes = 0 : i64, smem_scratch = 0 : i64, weight_loads = \"normal\", events = \"fences\", waits = \"serial\", poll_sleep = 32 : i64, inputs = \"after-wait\", thread_number = \"auto\", extents = \"record\"} : () -> ()",
                "'thread_number' must be \"loaded\" or \"mov\"",
            ),
            (
                &pair("with = 3 : i64", "with = 2 : i64"),
                "'with' names op #3, which the code does not have",
            ),
            (
                &pair("with = 2 : i64", ""),
                "'with' names op #2, which must be a \"row\" product naming op #1 back",
            ),
            (
                &pair("with = 2 : i64", "with = 1 : i64").replace("\"row\"", "\"lanes\""),
                "on the \"row\" path only",
            ),
        ] {
            let e = crate::parse_text("t.mlir", text).unwrap_err();
            assert!(e.contains(want), "{e}");
        }
    }
}
