//! The levels the compiler stops at, and the default pipeline that reaches each.

use mkc_fusion::fuse::FuseOptions;
use mkc_kernel::KernelOptions;
use mkc_passes::options::PassOptions;
use mkc_tasks::schedule::ScheduleOptions;
use mkc_tasks::split_argmax::SplitArgmaxOptions;
use mkc_tasks::split_attention::SplitAttentionOptions;
use mkc_tasks::split_k::SplitKOptions;
use mkc_tasks::tile::TileOptions;
use std::path::PathBuf;

/// A level of the compiler's output (`mkc compile --emit`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    /// The tensor level, cleaned up (canonicalize, cse, dce).
    Tensor,
    /// After fusion: one `fused.group` per megakernel task kind.
    Fused,
    /// After tiling: the fused IR plus a `task.graph` (tasks, byte ranges, events, places).
    Tasks,
    /// After scheduling: every task with its SM and queue slot.
    Schedule,
    /// The schedule as an SVG picture: a timeline per SM and one layer's event graph.
    ScheduleSvg,
    /// After `select-kernels`: the schedule with the megakernel's plan (settings, and per
    /// task code each op's places and algorithm).
    Plan,
    /// The megakernel as MLIR (gpu, scf, arith, llvm, nvvm dialects).
    Mlir,
    /// The megakernel's PTX.
    Ptx,
    /// A folder the runtime runs: PTX, the scheduled program, task tables, a manifest.
    Artifact,
}

impl Level {
    pub const ALL: [Level; 9] = [
        Level::Tensor,
        Level::Fused,
        Level::Tasks,
        Level::Schedule,
        Level::ScheduleSvg,
        Level::Plan,
        Level::Mlir,
        Level::Ptx,
        Level::Artifact,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Level::Tensor => "tensor",
            Level::Fused => "fused",
            Level::Tasks => "tasks",
            Level::Schedule => "schedule",
            Level::ScheduleSvg => "schedule-svg",
            Level::Plan => "plan",
            Level::Mlir => "mlir",
            Level::Ptx => "ptx",
            Level::Artifact => "artifact",
        }
    }

    pub fn from_name(s: &str) -> Option<Level> {
        Level::ALL.into_iter().find(|l| l.name() == s)
    }

    /// What the level's output is, in a line.
    pub fn summary(self) -> &'static str {
        match self {
            Level::Tensor => "The tensor level, cleaned up (canonicalize, cse, dce)",
            Level::Fused => "After fusion: one fused.group per megakernel task kind",
            Level::Tasks => {
                "After tiling: the fused IR plus a task.graph (tasks, byte ranges, events, placement)"
            }
            Level::Schedule => "After scheduling: every task with its SM and queue slot",
            Level::ScheduleSvg => {
                "The schedule as an SVG picture (-o FILE.svg): per-SM timeline and one layer's event graph"
            }
            Level::Plan => {
                "After select-kernels: the schedule plus the kernel plan (settings; per task code each op's places and algorithm)"
            }
            Level::Mlir => "The megakernel as MLIR (gpu, scf, arith, llvm, nvvm dialects)",
            Level::Ptx => "The megakernel's PTX (for the target's chip)",
            Level::Artifact => {
                "A folder (-o DIR) the runtime runs: PTX, the scheduled program, a manifest"
            }
        }
    }

    /// Whether the level needs the scheduled task program.
    pub fn is_scheduled(self) -> bool {
        self >= Level::Schedule
    }

    /// Whether the level is the megakernel (its MLIR, PTX or artifact).
    pub fn is_kernel(self) -> bool {
        self >= Level::Mlir
    }

    /// The level's default pipeline, its passes' options set from `o` (options at their
    /// defaults stay out of the text).
    pub fn pipeline(self, o: &PipelineOptions) -> String {
        let mut passes = vec!["canonicalize".to_string()];
        if self != Level::Tensor {
            passes.push(
                SplitAttentionOptions {
                    parts: o.attention_parts,
                }
                .spell("split-attention"),
            );
            if o.argmax_parts != 1 {
                passes.push(
                    SplitArgmaxOptions {
                        parts: o.argmax_parts,
                        ..Default::default()
                    }
                    .spell("split-argmax"),
                );
            }
            if o.split_k != SplitK::None {
                passes.push(
                    SplitKOptions {
                        mlp: matches!(o.split_k, SplitK::Mlp | SplitK::Both),
                        attention: matches!(o.split_k, SplitK::Attention | SplitK::Both),
                        ..Default::default()
                    }
                    .spell("split-k"),
                );
            }
            passes.push(
                FuseOptions {
                    combine: o.attention_combine.clone(),
                    k_row: o.k_row,
                    ..Default::default()
                }
                .spell("fuse"),
            );
        }
        passes.extend(["cse".to_string(), "dce".to_string()]);
        if self >= Level::Tasks {
            passes.push(
                TileOptions {
                    prune_waits: o.prune_waits,
                    last_signal_bytes: o.last_signal_bytes,
                    min_tile_bytes: o.min_tile_bytes,
                    min_light_tile_bytes: o.min_light_tile_bytes,
                    ..Default::default()
                }
                .spell("tile"),
            );
        }
        if self.is_scheduled() {
            let cost_model = o.cost_model.as_ref().map(|f| f.display().to_string());
            passes.push(
                ScheduleOptions {
                    cost_model: cost_model.unwrap_or_default(),
                }
                .spell("schedule"),
            );
        }
        if self >= Level::Plan {
            passes.push(o.kernel.spell("select-kernels"));
        }
        format!("builtin.module({})", passes.join(","))
    }
}

/// What the command line sets in the default pipelines.
#[derive(Clone, Debug, PartialEq)]
pub struct PipelineOptions {
    /// `split-attention{parts}`: 0 picks the target's SMs / heads.
    pub attention_parts: i64,
    /// `split-argmax{parts}`: 1 (the default) leaves the pass out; 0 picks the most parts
    /// (at most the SMs) of equal runs.
    pub argmax_parts: i64,
    /// `fuse{combine}`: `task` or `prologue`.
    pub attention_combine: String,
    /// `fuse{k-row}`: attention computes a per-head-normalised K row (and the query's
    /// norm and rope) itself.
    pub k_row: bool,
    /// `schedule{cost-model}`: measured task costs from `mkc tune`.
    pub cost_model: Option<PathBuf>,
    /// `tile{prune-waits}`.
    pub prune_waits: bool,
    /// `tile{last-signal-bytes}`.
    pub last_signal_bytes: f64,
    /// `tile{min-tile-bytes}`.
    pub min_tile_bytes: f64,
    /// `tile{min-light-tile-bytes}`.
    pub min_light_tile_bytes: f64,
    /// Which residual adds `split-k` (before `fuse`) makes sums of parts.
    pub split_k: SplitK,
    /// `select-kernels{...}`: how the megakernel is generated.
    pub kernel: KernelOptions,
}

impl Default for PipelineOptions {
    /// The passes' own defaults.
    fn default() -> Self {
        let tile = TileOptions::default();
        PipelineOptions {
            attention_parts: SplitAttentionOptions::default().parts,
            argmax_parts: 1,
            attention_combine: FuseOptions::default().combine,
            k_row: FuseOptions::default().k_row,
            cost_model: None,
            prune_waits: tile.prune_waits,
            last_signal_bytes: tile.last_signal_bytes,
            min_tile_bytes: tile.min_tile_bytes,
            min_light_tile_bytes: tile.min_light_tile_bytes,
            split_k: SplitK::default(),
            kernel: KernelOptions::default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_pipelines_name_only_what_differs() {
        let d = PipelineOptions::default();
        assert_eq!(
            Level::Tensor.pipeline(&d),
            "builtin.module(canonicalize,cse,dce)"
        );
        assert_eq!(
            Level::Schedule.pipeline(&d),
            "builtin.module(canonicalize,split-attention,fuse,cse,dce,tile,schedule)"
        );
        let mut o = PipelineOptions {
            attention_parts: 4,
            prune_waits: false,
            ..d
        };
        assert_eq!(
            Level::Tasks.pipeline(&o),
            "builtin.module(canonicalize,split-attention{parts=4},fuse,cse,dce,tile{prune-waits=false})"
        );
        o.min_tile_bytes = 1024.0;
        assert!(Level::Tasks
            .pipeline(&o)
            .ends_with("tile{min-tile-bytes=1024 prune-waits=false})"));
        o.kernel.threads = 256;
        assert!(Level::Ptx
            .pipeline(&o)
            .ends_with("schedule,select-kernels{threads=256})"));
        for l in Level::ALL {
            assert_eq!(Level::from_name(l.name()), Some(l));
        }
    }
}

/// Which residual adds become sums that tasks add their parts onto (`split-k`): a layer's
/// output projection (from attention's or the combine's tasks) or its MLP's down projection
/// (from the gate/up tasks), or both.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum SplitK {
    /// Neither: every projection a phase of its own (the default: the others are timed at
    /// short contexts only, docs/PERF.md).
    #[default]
    None,
    /// The MLP's down projection.
    Mlp,
    /// The output projection.
    Attention,
    /// Both: the down projection's sum is onto the output projection's (attention's tasks
    /// add onto both), three phases a layer.
    Both,
}

impl SplitK {
    pub const ALL: [SplitK; 4] = [SplitK::Attention, SplitK::Mlp, SplitK::Both, SplitK::None];

    pub fn name(self) -> &'static str {
        match self {
            SplitK::None => "none",
            SplitK::Mlp => "mlp",
            SplitK::Attention => "attention",
            SplitK::Both => "both",
        }
    }

    pub fn from_name(s: &str) -> Option<SplitK> {
        SplitK::ALL.into_iter().find(|k| k.name() == s)
    }
}
