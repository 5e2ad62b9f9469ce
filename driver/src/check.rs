//! `mkc check`: teacher-forced comparison of a model's logits with a fixture's references
//! (`reference.safetensors`, made by transformers). Engines share the same driver: each
//! position's logits are compared with row i of `logits_f32`.

use mkc_frontends::{build_decode_step, Checkpoint, DecodeOptions, HfModel};
use mkc_ir::verify::{verify, VerifyOptions};
use mkc_ir::weights::WeightSource;
use mkc_ir::{ElemType, Registry, TargetSpec, TensorType};
use mkc_runtime::compare::{argmax, compare_finite, nan_max, CompareError};
use mkc_runtime::interp::i64_tensor;
use mkc_runtime::{Interpreter, Simulator, Tensor};
use std::path::Path;

/// Where the logits come from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Engine {
    /// The reference interpreter of the tensor level.
    Interp,
    /// The scheduled task program on the CPU simulator (SM queues, events, bf16 memory).
    Sim,
    /// A compiled artifact (--artifact DIR) on the GPU, beside the simulator.
    Gpu,
}

impl Engine {
    pub const ALL: [Engine; 3] = [Engine::Interp, Engine::Sim, Engine::Gpu];

    pub fn name(self) -> &'static str {
        match self {
            Engine::Interp => "interp",
            Engine::Sim => "sim",
            Engine::Gpu => "gpu",
        }
    }

    pub fn from_name(s: &str) -> Option<Engine> {
        Engine::ALL.into_iter().find(|e| e.name() == s)
    }

    /// What the engine is, in a line.
    pub fn summary(self) -> &'static str {
        match self {
            Engine::Interp => "The reference interpreter of the tensor level",
            Engine::Sim => {
                "The scheduled task program on the CPU simulator (SM queues, events, bf16 memory)"
            }
            Engine::Gpu => "A compiled artifact (--artifact DIR) on the GPU, beside the simulator",
        }
    }
}

/// The outcome of a check.
pub struct CheckReport {
    pub engine: &'static str,
    pub frontend: &'static str,
    /// Which IR ran: "tensor", "fused", or "custom" (an explicit pipeline).
    pub level: String,
    pub per_position: Vec<(f64, bool)>,
}

impl CheckReport {
    /// The largest relative error (NaN if any position's is: `f64::max` would drop it).
    pub fn max_rel_err(&self) -> f64 {
        self.per_position.iter().map(|p| p.0).fold(0.0, nan_max)
    }
    pub fn argmax_agree(&self) -> usize {
        self.per_position.iter().filter(|p| p.1).count()
    }
    pub fn json(&self) -> String {
        format!(
            "{{\"engine\":\"{}\",\"frontend\":\"{}\",\"level\":\"{}\",\"positions\":{},\"max_rel_err\":{:.6e},\"argmax_agree\":{}}}",
            self.engine,
            self.frontend,
            self.level,
            self.per_position.len(),
            self.max_rel_err(),
            self.argmax_agree()
        )
    }
}

/// Reference tokens and logits of a fixture.
pub struct Reference {
    pub tokens: Vec<i64>,
    /// `[positions][vocab]`
    pub logits: Vec<Vec<f64>>,
}

/// The reference file to check `model` against: `given`, else `reference.safetensors` in the
/// model's folder (a fixture).
pub fn reference_path(model: &Path, given: Option<&Path>) -> Result<std::path::PathBuf, String> {
    if let Some(p) = given {
        return Ok(p.to_path_buf());
    }
    let dir = if model.is_dir() {
        model
    } else {
        model.parent().unwrap_or(Path::new("."))
    };
    let p = dir.join("reference.safetensors");
    if p.is_file() {
        Ok(p)
    } else {
        Err(format!(
            "no reference for {}: give --reference FILE (a reference.safetensors with \
             tokens_bf16 [n] and logits_f32 [n, vocab])",
            model.display()
        ))
    }
}

/// Reads a reference file: `tokens_bf16` [n] and `logits_f32` [n, vocab].
pub fn load_reference(path: &Path) -> Result<Reference, String> {
    let ck = Checkpoint::open(path)?;
    let tokens_raw = ck.raw("tokens_bf16")?;
    let n = tokens_raw.shape.first().copied().unwrap_or(0);
    let tokens = Tensor::from_raw(&tokens_raw, &TensorType::new([n], ElemType::I64))
        .map_err(|e| format!("{}: tokens_bf16 {e}", path.display()))?;
    let logits_raw = ck.raw("logits_f32")?;
    let shape = logits_raw.shape.clone();
    if shape.len() != 2 || shape[0] != n {
        return Err(format!(
            "{}: logits_f32 has shape {shape:?}, expected [{n}, vocab]",
            path.display()
        ));
    }
    let logits = Tensor::from_raw(&logits_raw, &TensorType::new(shape.clone(), ElemType::F32))
        .map_err(|e| format!("{}: logits_f32 {e}", path.display()))?;
    let v = shape[1] as usize;
    let all = logits.to_f64();
    Ok(Reference {
        tokens: (0..n as usize).map(|i| tokens.get(i).i()).collect(),
        logits: all.chunks(v).map(<[f64]>::to_vec).collect(),
    })
}

/// Position `pos`'s logits against row `pos` of the reference: the relative error and
/// whether the argmaxes agree. A NaN or an infinity on either side (or a length mismatch)
/// fails, naming the position and the element.
fn compare_position(pos: usize, got: &[f64], want: &[f64]) -> Result<(f64, bool), String> {
    let at = |e: CompareError| format!("position {pos}: logits against reference.safetensors: {e}");
    let c = compare_finite(got, want).map_err(at)?;
    Ok((
        c.rel_err,
        argmax(got).map_err(at)? == argmax(want).map_err(at)?,
    ))
}

/// The argmax of position `pos`'s logits, which must be finite.
fn logits_argmax(pos: usize, logits: &[f64]) -> Result<i64, String> {
    argmax(logits)
        .map(|i| i as i64)
        .map_err(|e| format!("position {pos}: logits {e}"))
}

/// The GPU's logits at position `pos` against the simulator's: their relative error; a NaN
/// or an infinity on either side fails, naming the position and the element.
#[cfg_attr(not(feature = "cuda"), allow(dead_code))]
fn compare_with_simulator(pos: usize, gpu: &[f64], sim: &[f64]) -> Result<f64, String> {
    compare_finite(gpu, sim)
        .map(|c| c.rel_err)
        .map_err(|e| format!("position {pos}: the GPU's logits against the simulator's: {e}"))
}

/// Imports the checkpoint, then feeds the reference tokens one position at a time through
/// the decode step.
fn level_name(pipeline: &str) -> String {
    match pipeline {
        "" => "tensor".into(),
        p if p.contains("schedule") => "schedule".into(),
        p if p.contains("fuse") => "fused".into(),
        _ => "custom".into(),
    }
}

/// How one check runs on the CPU.
pub struct CheckRun<'a> {
    pub engine: Engine,
    /// The simulator's interleaving.
    pub seed: u64,
    /// Passes to run on the imported IR first ("" runs it as imported).
    pub pipeline: &'a str,
    /// The GPU the pipeline compiles for.
    pub target: &'a TargetSpec,
}

/// Attaches the target and runs the pipeline on imported IR (verifying after each pass).
fn apply_pipeline(body: &mut mkc_ir::Body, run: &CheckRun) -> Result<(), String> {
    run.target.apply(body)?;
    if !run.pipeline.is_empty() {
        crate::run_pipeline(body, run.pipeline)?;
    }
    Ok(())
}

/// `model`: a checkpoint folder or a GGUF file; `reference`: its reference file.
pub fn check_hf(
    model: &Path,
    reference: &Path,
    run: &CheckRun,
    progress: &mut dyn FnMut(usize, f64, bool),
) -> Result<CheckReport, String> {
    let (engine, seed, pipeline) = (run.engine, run.seed, run.pipeline);
    let reference = load_reference(reference)?;
    let dir = model;
    let model = HfModel::open(dir)?;
    let ckpt = model.checkpoint.as_ref().ok_or_else(|| {
        format!(
            "{} has no weights: check compares a checkpoint with its reference",
            dir.display()
        )
    })?;
    let n = reference.tokens.len();
    let opts = DecodeOptions {
        max_context: n as i64,
        ..Default::default()
    };
    let mut body = build_decode_step(&model.config, &model.weight_types(), &opts)?;
    apply_pipeline(&mut body, run)?;
    let registry = Registry::with_all_dialects();
    let errors = verify(&body, &registry, VerifyOptions::default());
    if let Some(e) = errors.first() {
        return Err(format!(
            "internal error: the imported IR does not verify: {}",
            e.message
        ));
    }
    let mut interp = Interpreter::new(&body, ckpt as &dyn WeightSource);
    let func = interp.func("decode_step")?;
    let mut sim = match engine {
        Engine::Sim => Some(Simulator::new(&body, ckpt as &dyn WeightSource, seed)?),
        Engine::Interp => None,
        Engine::Gpu => return Err("internal error: the GPU engine has its own driver".into()),
    };
    let layers = model.config.num_layers as usize;
    let cache_ty = TensorType::new(
        [
            opts.max_context,
            model.config.num_kv_heads,
            model.config.head_dim,
        ],
        opts.compute,
    );
    let mut caches: Vec<Tensor> = (0..2 * layers)
        .map(|_| {
            Tensor::from_fn(cache_ty.clone(), |_| {
                mkc_ir::dialect::tg::elementwise::Scalar::F(0.0)
            })
        })
        .collect();
    let mut per_position = Vec::new();
    for (pos, &tok) in reference.tokens.iter().enumerate() {
        let mut inputs = vec![
            i64_tensor(&[], vec![tok]),
            i64_tensor(&[], vec![pos as i64]),
        ];
        inputs.append(&mut caches);
        let mut outs = match &mut sim {
            Some(sim) => sim.call(&inputs).map_err(|e| e.to_string()),
            None => interp.call(func, inputs),
        }
        .map_err(|e| format!("position {pos}: {e}"))?;
        let logits = outs.remove(0).to_f64();
        let next = outs.remove(0).get(0).i();
        let r = compare_position(pos, &logits, &reference.logits[pos])?;
        if next != logits_argmax(pos, &logits)? {
            return Err(format!(
                "position {pos}: the step's argmax {next} is not the logits' argmax"
            ));
        }
        caches = outs;
        progress(pos, r.0, r.1);
        per_position.push(r);
    }
    Ok(CheckReport {
        engine: engine.name(),
        frontend: "hf",
        level: level_name(pipeline),
        per_position,
    })
}

/// Imports the fixture's model.onnx (the full-sequence causal forward) and runs it once on
/// all reference tokens; row i of its logits is compared with row i of the reference.
pub fn check_onnx(
    dir: &Path,
    reference: &Path,
    run: &CheckRun,
    progress: &mut dyn FnMut(usize, f64, bool),
) -> Result<CheckReport, String> {
    let (engine, seed, pipeline) = (run.engine, run.seed, run.pipeline);
    use mkc_frontends::onnx::{import, ImportOptions, OnnxModel, OnnxWeights};
    let reference = load_reference(reference)?;
    let path = dir.join("model.onnx");
    let model = OnnxModel::open(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut body = import(&model, &ImportOptions::default())
        .map_err(|e| format!("{}: {e}", path.display()))?;
    apply_pipeline(&mut body, run)?;
    let registry = Registry::with_all_dialects();
    if let Some(e) = verify(&body, &registry, VerifyOptions::default()).first() {
        return Err(format!(
            "internal error: the imported IR does not verify: {}",
            e.message
        ));
    }
    let weights = OnnxWeights::new(&model);
    let mut interp = Interpreter::new(&body, &weights);
    let func = interp.func("main")?;
    let n = reference.tokens.len() as i64;
    let entry = body.entry_block(func, 0).ok_or("no body")?;
    let want = TensorType::new([1, n], ElemType::I64);
    match body.blocks[entry].args.first().map(|&a| body.ty(a)) {
        Some(t) if t.as_tensor() == Some(&want) => {}
        other => {
            return Err(format!(
                "{}: the first input must be input_ids {}, found {}",
                path.display(),
                mkc_ir::Type::Tensor(want),
                other.map_or("nothing".to_string(), |t| t.to_string())
            ))
        }
    }
    let ids = i64_tensor(&[1, n], reference.tokens.clone());
    let outs = match engine {
        Engine::Sim => Simulator::new(&body, &weights, seed)?
            .call(&[ids])
            .map_err(|e| e.to_string())?,
        Engine::Interp => interp.call(func, vec![ids])?,
        Engine::Gpu => {
            return Err(
                "--engine gpu runs Hugging Face checkpoints' decode step (drop --onnx)".into(),
            )
        }
    };
    let logits = outs.first().ok_or("the model returns nothing")?;
    let v = reference.logits[0].len();
    if logits.ty.shape != [1, n, v as i64] {
        return Err(format!(
            "logits have type {}, expected [1, {n}, {v}]",
            logits.ty
        ));
    }
    let all = logits.to_f64();
    let mut per_position = Vec::new();
    for (pos, row) in all.chunks(v).enumerate() {
        let r = compare_position(pos, row, &reference.logits[pos])?;
        progress(pos, r.0, r.1);
        per_position.push(r);
    }
    Ok(CheckReport {
        engine: engine.name(),
        frontend: "onnx",
        level: level_name(pipeline),
        per_position,
    })
}

/// How far the GPU's logits may be from the simulator's running the same program: both store
/// bf16 and differ in the order of f32 sums (and in `ex2.approx`), so at most 1e-2.
pub const GPU_VS_SIM: f64 = 1e-2;

/// The same where the program rounds activations to 8 bits (`act_q8`): a value that rounds to
/// the neighbouring integer on one and not the other (its f32 inputs differ in the last
/// bits) moves the logits of a small model by about 1e-2 from then on (measured: one such
/// value in llama-tiny Q4_0, 1.1e-2, then 0.8-1.0e-2 at every later position through the KV
/// cache; the GPU against the simulator shows that pattern, exact to 2e-7 up to the position
/// where it starts).
pub const GPU_VS_SIM_INT8: f64 = 3e-2;

/// The GPU-versus-simulator bound for a scheduled program ([`GPU_VS_SIM`], or
/// [`GPU_VS_SIM_INT8`] when it rounds activations).
pub fn gpu_vs_sim_bound(program: &mkc_ir::Body) -> f64 {
    let rounds = program.walk(program.root).into_iter().any(|op| {
        matches!(
            program.ops[op].attrs.get("act_q8"),
            Some(mkc_ir::attr::Attr::Bool(true))
        )
    });
    if rounds {
        GPU_VS_SIM_INT8
    } else {
        GPU_VS_SIM
    }
}

/// `--engine gpu`: the artifact's kernel on the device, teacher-forced like the others, and
/// the simulator running the same program beside it. Returns the report and, with the
/// simulator, the largest relative difference between the GPU's and the simulator's logits
/// at any position (each position's also goes to `vs_sim`) and the program's bound for it
/// ([`gpu_vs_sim_bound`]).
#[cfg(feature = "cuda")]
pub fn check_hf_gpu(
    dir: &Path,
    reference: &Path,
    artifact: &Path,
    with_sim: bool,
    progress: &mut dyn FnMut(usize, f64, bool),
    vs_sim: &mut dyn FnMut(usize, f64),
) -> Result<(CheckReport, Option<(f64, f64)>), String> {
    use mkc_runtime::artifact::Artifact;
    use mkc_runtime::gpu::GpuRunner;
    let reference = load_reference(reference)?;
    let model = HfModel::open(dir)?;
    let ckpt = model.checkpoint.as_ref().ok_or_else(|| {
        format!(
            "{} has no weights: check compares a checkpoint with its reference",
            dir.display()
        )
    })?;
    let art = Artifact::open(artifact)?;
    art.check_model(&[dir])?;
    let sim_program = mkc_runtime::image::Program::parse(&art.program, "program.mlir")?;
    let stored = crate::import::as_stored(&sim_program.body, ckpt as &dyn WeightSource);
    let ckpt = &stored;
    let mut gpu = GpuRunner::new(&art, ckpt as &dyn WeightSource, 0)?;
    let mut sim = match with_sim {
        true => Some(Simulator::new(
            &sim_program.body,
            ckpt as &dyn WeightSource,
            0,
        )?),
        false => None,
    };
    // An artifact with other programs (short steps', long steps'): the simulator runs the
    // program the GPU runs at each position (the caches are passed in, so the two carry the
    // same state).
    let alt_programs = art
        .alternates()
        .iter()
        .map(|a| {
            mkc_runtime::image::Program::parse(
                &a.artifact.program,
                &format!("{}/program.mlir", a.name),
            )
        })
        .collect::<Result<Vec<_>, _>>()?;
    let mut alt_sims = alt_programs
        .iter()
        .filter(|_| with_sim)
        .map(|p| Simulator::new(&p.body, ckpt as &dyn WeightSource, 0))
        .collect::<Result<Vec<_>, _>>()?;
    let inputs: Vec<TensorType> = gpu
        .program
        .inputs
        .iter()
        .map(|&v| gpu.program.ty(v))
        .collect::<Result<_, _>>()?;
    let scalar = TensorType::new(Vec::<i64>::new(), ElemType::I64);
    if inputs.len() < 2 || inputs[0] != scalar || inputs[1] != scalar {
        return Err("the artifact is not a decode step (token, position, caches...)".into());
    }
    let ctx = gpu.program.cache_positions();
    if (reference.tokens.len() as i64) > ctx {
        return Err(format!(
            "the artifact's caches hold {ctx} positions; the fixture needs {}",
            reference.tokens.len()
        ));
    }
    let mut caches: Vec<Tensor> = inputs[2..]
        .iter()
        .map(|t| {
            Tensor::from_fn(t.clone(), |_| {
                mkc_ir::dialect::tg::elementwise::Scalar::F(0.0)
            })
        })
        .collect();
    let mut per_position = Vec::new();
    let mut worst_vs_sim = 0.0f64;
    for (pos, &tok) in reference.tokens.iter().enumerate() {
        let t = i64_tensor(&[], vec![tok]);
        let p = i64_tensor(&[], vec![pos as i64]);
        let mut gin: Vec<Option<&Tensor>> = vec![Some(&t), Some(&p)];
        gin.extend(std::iter::repeat_n(None, caches.len()));
        let got = gpu
            .call(&gin, &[0, 1])
            .map_err(|e| format!("position {pos}: {e}"))?;
        let logits = got[0].to_f64();
        let r = compare_position(pos, &logits, &reference.logits[pos])?;
        let own = logits_argmax(pos, &logits)?;
        if got[1].get(0).i() != own {
            return Err(format!(
                "position {pos}: the GPU's argmax {} is not its logits' argmax {own}",
                got[1].get(0).i(),
            ));
        }
        progress(pos, r.0, r.1);
        per_position.push(r);
        if !with_sim {
            continue;
        }
        let mut sin = vec![t.clone(), p.clone()];
        sin.append(&mut caches);
        let sim = match (art.alternate_at(pos as i64), sim.as_mut()) {
            (Some(i), _) => &mut alt_sims[i],
            (None, Some(s)) => s,
            (None, None) => unreachable!("the simulator runs when with_sim"),
        };
        let mut souts = sim
            .call(&sin)
            .map_err(|e| format!("position {pos}: simulator: {e}"))?;
        let sim_logits = souts.remove(0).to_f64();
        souts.remove(0);
        caches = souts;
        let d = compare_with_simulator(pos, &logits, &sim_logits)?;
        vs_sim(pos, d);
        worst_vs_sim = nan_max(worst_vs_sim, d);
    }
    Ok((
        CheckReport {
            engine: "gpu",
            frontend: "hf",
            level: "artifact".into(),
            per_position,
        },
        with_sim.then_some((worst_vs_sim, gpu_vs_sim_bound(&sim_program.body))),
    ))
}

/// `--engine gpu --onnx`: the artifact compiled from the fixture's model.onnx (the
/// full-sequence forward) run once on the GPU on all reference tokens, and on the simulator.
#[cfg(feature = "cuda")]
pub fn check_onnx_gpu(
    dir: &Path,
    reference: &Path,
    artifact: &Path,
    progress: &mut dyn FnMut(usize, f64, bool),
) -> Result<(CheckReport, f64), String> {
    use mkc_frontends::onnx::{OnnxModel, OnnxWeights};
    use mkc_runtime::artifact::Artifact;
    use mkc_runtime::gpu::GpuRunner;
    let reference = load_reference(reference)?;
    let path = dir.join("model.onnx");
    let model = OnnxModel::open(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    let weights = OnnxWeights::new(&model);
    let art = Artifact::open(artifact)?;
    art.check_model(&[dir, &path])?;
    let mut gpu = GpuRunner::new(&art, &weights, 0)?;
    let n = reference.tokens.len() as i64;
    let ids = i64_tensor(&[1, n], reference.tokens.clone());
    if gpu.program.inputs.len() != 1 || gpu.program.ty(gpu.program.inputs[0])? != ids.ty {
        return Err(format!(
            "the artifact does not take input_ids {} (was it compiled from this model.onnx?)",
            ids.ty
        ));
    }
    let got = gpu.call(&[Some(&ids)], &[0])?.remove(0);
    let sim_program = mkc_runtime::image::Program::parse(&art.program, "program.mlir")?;
    let want_sim = Simulator::new(&sim_program.body, &weights, 0)?
        .call(&[ids])
        .map_err(|e| format!("simulator: {e}"))?
        .remove(0);
    let v = reference.logits[0].len();
    let (all, all_sim) = (got.to_f64(), want_sim.to_f64());
    if all.len() != v * n as usize {
        return Err(format!(
            "logits have type {}, expected [1, {n}, {v}]",
            got.ty
        ));
    }
    if all_sim.len() != all.len() {
        return Err(format!(
            "the simulator's logits have type {}, the GPU's {}",
            want_sim.ty, got.ty
        ));
    }
    let mut per_position = Vec::new();
    let mut worst = 0.0f64;
    for (pos, (row, srow)) in all.chunks(v).zip(all_sim.chunks(v)).enumerate() {
        worst = nan_max(worst, compare_with_simulator(pos, row, srow)?);
        let r = compare_position(pos, row, &reference.logits[pos])?;
        progress(pos, r.0, r.1);
        per_position.push(r);
    }
    Ok((
        CheckReport {
            engine: "gpu",
            frontend: "onnx",
            level: "artifact".into(),
            per_position,
        },
        worst,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_position_with_a_non_finite_logit_fails_naming_it() {
        let want = [0.5, -1.0, 2.0, 0.25];
        assert_eq!(compare_position(4, &want, &want), Ok((0.0, true)));
        for bad in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
            let got = [0.5, bad, 2.0, 0.25];
            assert_eq!(
                compare_position(4, &got, &want),
                Err(format!(
                    "position 4: logits against reference.safetensors: element 1 is {bad}, expected -1"
                ))
            );
            // A reference with one fails too.
            assert_eq!(
                compare_position(4, &want, &got),
                Err(format!(
                    "position 4: logits against reference.safetensors: the reference's element 1 is {bad} (got -1)"
                ))
            );
            assert_eq!(
                logits_argmax(4, &got),
                Err(format!("position 4: logits element 1 is {bad}"))
            );
        }
        assert_eq!(
            compare_position(4, &want[..3], &want),
            Err(
                "position 4: logits against reference.safetensors: 3 elements, the reference has 4"
                    .into()
            )
        );
    }

    #[test]
    fn the_gpu_against_the_simulator_fails_on_a_non_finite_logit() {
        let sim = [0.5, -1.0, 2.0];
        for bad in [f64::NAN, f64::INFINITY] {
            assert_eq!(
                compare_with_simulator(9, &[0.5, -1.0, bad], &sim),
                Err(format!(
                    "position 9: the GPU's logits against the simulator's: element 2 is {bad}, expected 2"
                ))
            );
            assert!(compare_with_simulator(9, &sim, &[bad, -1.0, 2.0])
                .unwrap_err()
                .contains("the reference's element 0 is"));
        }
    }

    #[test]
    fn the_report_keeps_a_nan_error() {
        let report = CheckReport {
            engine: "interp",
            frontend: "hf",
            level: "tensor".into(),
            per_position: vec![(1e-4, true), (f64::NAN, true), (2e-4, true)],
        };
        assert!(report.max_rel_err().is_nan());
    }
}
