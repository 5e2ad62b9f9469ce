//! `attach-target`: sets the module's target description (`mkc.target`), the machine every
//! later pass and the kernel generator read their numbers from: a preset, then any field
//! overridden (`attach-target{preset=h200 sms=64}`). Without a preset the fields override
//! the module's current target (MLIR's `nvvm-attach-target` plays the same part for its GPU
//! modules).

use crate::manager::{Pass, PassContext, PassInfo};
use crate::options::OptionInfo;
use mkc_ir::diag::Diagnostic;
use mkc_ir::{Body, OpId, Target, TargetSpec};

pub struct AttachTarget {
    spec: TargetSpec,
}

pub fn info() -> PassInfo {
    PassInfo {
        name: "attach-target",
        summary: "set the module's target (a preset and overridden fields) for the passes after it",
        anchor: None,
        options: describe,
        statistics: &[],
        create: |o| {
            let mut spec = TargetSpec::default();
            for (k, v) in o {
                if k == "preset" {
                    spec.preset = Some(v.clone());
                } else {
                    spec.fields.push((k.clone(), v.clone()));
                }
            }
            // Checked here, so a bad pipeline fails before it runs.
            spec.standalone()?;
            Ok(Box::new(AttachTarget { spec }))
        },
    }
}

fn describe() -> Vec<OptionInfo> {
    let mut v = vec![OptionInfo {
        name: "preset",
        type_name: "string",
        default: "the module's, else h100".into(),
        help: "the GPU: h100 or h200",
    }];
    v.extend(Target::field_names().iter().map(|&name| OptionInfo {
        name,
        type_name: if name == "chip" { "string" } else { "number" },
        default: "the preset's".into(),
        help: "overrides the preset's value (docs/architecture.md lists the fields)",
    }));
    v
}

impl Pass for AttachTarget {
    fn run(&mut self, body: &mut Body, _op: OpId, _cx: &mut PassContext) -> Result<(), Diagnostic> {
        let loc = body.ops[body.root].loc;
        self.spec
            .apply(body)
            .map(|_| ())
            .map_err(|m| Diagnostic::error(loc, format!("attach-target: {m}")))
    }
}
