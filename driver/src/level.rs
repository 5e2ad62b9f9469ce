//! The levels the compiler stops at, and the default pipeline that reaches each.

use std::fmt::Write as _;
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
    /// The megakernel as MLIR (gpu, scf, arith, llvm, nvvm dialects).
    Mlir,
    /// The megakernel's PTX.
    Ptx,
    /// A folder the runtime runs: PTX, the scheduled program, task tables, a manifest.
    Artifact,
}

impl Level {
    pub const ALL: [Level; 8] = [
        Level::Tensor,
        Level::Fused,
        Level::Tasks,
        Level::Schedule,
        Level::ScheduleSvg,
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
            passes.push(match o.attention_parts {
                0 => "split-attention".to_string(),
                n => format!("split-attention{{parts={n}}}"),
            });
            passes.push(format!("fuse{{combine={}}}", o.attention_combine));
        }
        passes.extend(["cse".to_string(), "dce".to_string()]);
        if self >= Level::Tasks {
            let defaults = PipelineOptions::default();
            let mut tile = Vec::new();
            if o.prune_waits != defaults.prune_waits {
                tile.push(format!("prune-waits={}", o.prune_waits));
            }
            if o.last_signal_bytes != defaults.last_signal_bytes {
                tile.push(format!("last-signal-bytes={}", o.last_signal_bytes));
            }
            passes.push(match tile.is_empty() {
                true => "tile".to_string(),
                false => format!("tile{{{}}}", tile.join(" ")),
            });
        }
        if self.is_scheduled() {
            let mut s = "schedule".to_string();
            if let Some(f) = &o.cost_model {
                let _ = write!(s, "{{cost-model={}}}", f.display());
            }
            passes.push(s);
        }
        format!("builtin.module({})", passes.join(","))
    }
}

/// What the command line sets in the default pipelines.
#[derive(Clone, Debug, PartialEq)]
pub struct PipelineOptions {
    /// `split-attention{parts}`: 0 picks the target's SMs / heads.
    pub attention_parts: i64,
    /// `fuse{combine}`: `task` or `prologue`.
    pub attention_combine: String,
    /// `schedule{cost-model}`: measured task costs from `mkc tune`.
    pub cost_model: Option<PathBuf>,
    /// `tile{prune-waits}`.
    pub prune_waits: bool,
    /// `tile{last-signal-bytes}`.
    pub last_signal_bytes: f64,
}

impl Default for PipelineOptions {
    /// The passes' own defaults.
    fn default() -> Self {
        let tile = mkc_tasks::tile::TileOptions::default();
        PipelineOptions {
            attention_parts: mkc_tasks::split_attention::SplitAttentionOptions::default().parts,
            attention_combine: mkc_fusion::fuse::FuseOptions::default().combine,
            cost_model: None,
            prune_waits: tile.prune_waits,
            last_signal_bytes: tile.last_signal_bytes,
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
            "builtin.module(canonicalize,split-attention,fuse{combine=task},cse,dce,tile,schedule)"
        );
        let o = PipelineOptions {
            attention_parts: 4,
            prune_waits: false,
            ..d
        };
        assert_eq!(
            Level::Tasks.pipeline(&o),
            "builtin.module(canonicalize,split-attention{parts=4},fuse{combine=task},cse,dce,tile{prune-waits=false})"
        );
        for l in Level::ALL {
            assert_eq!(Level::from_name(l.name()), Some(l));
        }
    }
}
