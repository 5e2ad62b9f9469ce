//! The CUDA device as the runtime sees it (feature `cuda`; libcuda is loaded at run time, so
//! a machine without a driver gets a clear error, not a crash).

use cudarc::driver::{sys, CudaContext};
use mkc_ir::EntityRef;

/// What the launcher checks a compiled schedule against.
#[derive(Clone, Debug, PartialEq)]
pub struct DeviceInfo {
    pub name: String,
    pub compute_capability: (i32, i32),
    pub sms: i32,
    pub total_mem: usize,
    /// Shared memory one block may opt into (bytes).
    pub smem_per_block_optin: i32,
    pub clock_khz: i32,
}

/// Why there is no device to use.
pub fn unavailable_reason() -> Option<String> {
    // SAFETY: only tries to load the library; no CUDA call is made.
    if !unsafe { sys::is_culib_present() } {
        return Some("no CUDA driver (libcuda) on this machine".into());
    }
    match CudaContext::device_count() {
        Ok(n) if n > 0 => None,
        Ok(_) => Some("the CUDA driver reports no device".into()),
        Err(e) => Some(format!("the CUDA driver cannot list devices: {e}")),
    }
}

fn ctx(ordinal: usize) -> Result<std::sync::Arc<CudaContext>, String> {
    if let Some(why) = unavailable_reason() {
        return Err(why);
    }
    CudaContext::new(ordinal).map_err(|e| format!("cannot open device {ordinal}: {e}"))
}

/// Queries device `ordinal`.
pub fn probe(ordinal: usize) -> Result<DeviceInfo, String> {
    let ctx = ctx(ordinal)?;
    let attr = |a| {
        ctx.attribute(a)
            .map_err(|e| format!("cuDeviceGetAttribute: {e}"))
    };
    use sys::CUdevice_attribute::*;
    Ok(DeviceInfo {
        name: ctx.name().map_err(|e| e.to_string())?,
        compute_capability: ctx.compute_capability().map_err(|e| e.to_string())?,
        sms: attr(CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT)?,
        total_mem: ctx.total_mem().map_err(|e| e.to_string())?,
        smem_per_block_optin: attr(CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_BLOCK_OPTIN)?,
        clock_khz: attr(CU_DEVICE_ATTRIBUTE_CLOCK_RATE)?,
    })
}

/// Device-to-device copy bandwidth (read + write bytes per second), the median over `iters`
/// copies of `bytes` timed with CUDA events after warm-up: the memory floor's denominator.
pub fn copy_bandwidth(ordinal: usize, bytes: usize, iters: usize) -> Result<f64, String> {
    let ctx = ctx(ordinal)?;
    let e = |e: cudarc::driver::DriverError| e.to_string();
    let stream = ctx.default_stream();
    let src = stream.alloc_zeros::<u8>(bytes).map_err(e)?;
    let mut dst = stream.alloc_zeros::<u8>(bytes).map_err(e)?;
    for _ in 0..3 {
        stream.memcpy_dtod(&src, &mut dst).map_err(e)?;
    }
    let mut ms = Vec::with_capacity(iters);
    for _ in 0..iters.max(1) {
        let start = ctx
            .new_event(Some(sys::CUevent_flags::CU_EVENT_DEFAULT))
            .map_err(e)?;
        let end = ctx
            .new_event(Some(sys::CUevent_flags::CU_EVENT_DEFAULT))
            .map_err(e)?;
        start.record(&stream).map_err(e)?;
        stream.memcpy_dtod(&src, &mut dst).map_err(e)?;
        end.record(&stream).map_err(e)?;
        end.synchronize().map_err(e)?;
        ms.push(start.elapsed_ms(&end).map_err(e)? as f64);
    }
    ms.sort_by(f64::total_cmp);
    let median = ms[ms.len() / 2];
    Ok(2.0 * bytes as f64 / (median * 1e-3))
}

/// What running the example kernel showed.
#[derive(Clone, Debug, PartialEq)]
pub struct KernelCheck {
    pub elements: usize,
    /// Elements whose result differs from the host's `x * factor` (bit for bit: a NaN or an
    /// infinity differs from every finite value).
    pub mismatches: usize,
    /// The first of them: (index, the device's value, the host's).
    pub first_mismatch: Option<(usize, f32, f32)>,
    /// Median launch time over the timed launches (CUDA events).
    pub median_us: f64,
}

/// Loads `ptx` (from `mkc mlir-to-ptx examples/scale_kernel.mlir`), runs its kernel
/// `scale(buf, factor)` over `elements` floats, compares with the host, then times `iters`
/// launches. The first check that MLIR's PTX loads and computes on this device.
pub fn check_scale_kernel(
    ordinal: usize,
    ptx: &str,
    elements: usize,
    iters: usize,
) -> Result<KernelCheck, String> {
    use cudarc::driver::{LaunchConfig, PushKernelArg};
    const BLOCK: usize = 256;
    if elements == 0 || !elements.is_multiple_of(BLOCK) {
        return Err(format!("elements must be a positive multiple of {BLOCK}"));
    }
    let ctx = ctx(ordinal)?;
    let e = |e: cudarc::driver::DriverError| e.to_string();
    let module = ctx
        .load_module(cudarc::nvrtc::Ptx::from_src(ptx))
        .map_err(|err| format!("the driver rejects the PTX: {err}"))?;
    let f = module
        .load_function("scale")
        .map_err(|err| format!("the PTX has no kernel 'scale': {err}"))?;
    let stream = ctx.default_stream();
    let host: Vec<f32> = (0..elements)
        .map(|i| (i % 1000) as f32 * 0.5 - 7.0)
        .collect();
    let mut buf = stream.clone_htod(&host).map_err(e)?;
    let factor = 3.0f32;
    let cfg = LaunchConfig {
        grid_dim: ((elements / BLOCK) as u32, 1, 1),
        block_dim: (BLOCK as u32, 1, 1),
        shared_mem_bytes: 0,
    };
    let launch = |buf: &mut cudarc::driver::CudaSlice<f32>| -> Result<(), String> {
        let mut b = stream.launch_builder(&f);
        b.arg(buf).arg(&factor);
        // SAFETY: the kernel takes (f32 global pointer, f32) and touches one element per
        // thread; the grid covers exactly `elements` threads.
        unsafe { b.launch(cfg) }.map_err(e)?;
        Ok(())
    };
    launch(&mut buf)?;
    let got = stream.clone_dtoh(&buf).map_err(e)?;
    let wrong = |(_, (x, y)): &(usize, (&f32, &f32))| (**x * factor).to_bits() != y.to_bits();
    let mismatches = host.iter().zip(&got).enumerate().filter(wrong).count();
    let first_mismatch = host
        .iter()
        .zip(&got)
        .enumerate()
        .find(wrong)
        .map(|(i, (x, y))| (i, *y, x * factor));
    let mut us = Vec::with_capacity(iters.max(1));
    for _ in 0..iters.max(1) {
        let start = ctx
            .new_event(Some(sys::CUevent_flags::CU_EVENT_DEFAULT))
            .map_err(e)?;
        let end = ctx
            .new_event(Some(sys::CUevent_flags::CU_EVENT_DEFAULT))
            .map_err(e)?;
        start.record(&stream).map_err(e)?;
        launch(&mut buf)?;
        end.record(&stream).map_err(e)?;
        end.synchronize().map_err(e)?;
        us.push(start.elapsed_ms(&end).map_err(e)? as f64 * 1e3);
    }
    us.sort_by(f64::total_cmp);
    Ok(KernelCheck {
        elements,
        mismatches,
        first_mismatch,
        median_us: us[us.len() / 2],
    })
}

/// A compiled artifact loaded on a device: its kernel, its buffers (weights uploaded), and
/// the event counters, which only grow: call `step` once per decode step.
pub struct GpuRunner {
    ctx: std::sync::Arc<CudaContext>,
    stream: std::sync::Arc<cudarc::driver::CudaStream>,
    /// The artifact's program (inputs, results, memory), which steps run unless one of
    /// `alternates` runs theirs.
    pub program: crate::image::Program,
    buffers: Vec<cudarc::driver::CudaSlice<u8>>,
    main: Launch,
    /// The artifact's other programs (short steps', long steps'), with the positions each
    /// runs.
    alternates: Vec<AlternateLaunch>,
    /// Which of `alternates` the next launch runs; None: `main` (set from the position
    /// input by `call`).
    active: Option<usize>,
    /// While profiling: three globaltimer stamps per queue entry.
    trace: Option<cudarc::driver::CudaSlice<u64>>,
}

/// One of an artifact's other programs, loaded: the positions whose steps run it.
struct AlternateLaunch {
    name: &'static str,
    positions: std::ops::Range<i64>,
    launch: Launch,
    program: crate::image::Program,
}

/// What one program's launches need besides the memory the programs share: its kernel,
/// tables, scratch, and counters with their own step count (a counter waited for
/// `target * step` counts the launches of its own program only).
struct Launch {
    _module: std::sync::Arc<cudarc::driver::CudaModule>,
    func: cudarc::driver::CudaFunction,
    /// The task table, queue entries and queues.
    tables: [cudarc::driver::CudaSlice<i64>; 3],
    scratch: cudarc::driver::CudaSlice<u8>,
    counters: cudarc::driver::CudaSlice<u8>,
    manifest: crate::artifact::Manifest,
    steps: u32,
    entries: usize,
}

impl Launch {
    fn new(
        ctx: &std::sync::Arc<CudaContext>,
        stream: &std::sync::Arc<cudarc::driver::CudaStream>,
        art: &crate::artifact::Artifact,
        info: &DeviceInfo,
        ordinal: usize,
    ) -> Result<Launch, String> {
        let module = ctx
            .load_module(cudarc::nvrtc::Ptx::from_src(art.ptx.as_str()))
            .map_err(|err| format!("the driver rejects the artifact's PTX: {err}"))?;
        let func = module
            .load_function(&art.manifest.kernel)
            .map_err(|err| format!("the PTX has no kernel '{}': {err}", art.manifest.kernel))?;
        if art.manifest.dynamic_smem > 0 {
            let most = info.smem_per_block_optin.max(0) as usize;
            if art.manifest.dynamic_smem as usize > most {
                return Err(format!(
                    "the kernel needs {} bytes of shared memory per CTA but device {ordinal} offers {most}",
                    art.manifest.dynamic_smem
                ));
            }
            func.set_attribute(
                sys::CUfunction_attribute_enum::CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES,
                art.manifest.dynamic_smem as i32,
            )
            .map_err(|e| {
                format!(
                    "cannot give the kernel {} bytes of shared memory: {e}",
                    art.manifest.dynamic_smem
                )
            })?;
        }
        let table = |w: &[i64]| {
            if w.is_empty() {
                stream.alloc_zeros::<i64>(2)
            } else {
                stream.clone_htod(w)
            }
        };
        let tables = [
            table(&art.tasks).map_err(de)?,
            table(&art.entries).map_err(de)?,
            table(&art.queues).map_err(de)?,
        ];
        let scratch = stream
            .alloc_zeros::<u8>((art.manifest.scratch_per_cta as usize * art.manifest.ctas).max(16))
            .map_err(de)?;
        let counters = stream
            .alloc_zeros::<u8>((4 * art.manifest.events).max(16))
            .map_err(de)?;
        Ok(Launch {
            _module: module,
            func,
            tables,
            scratch,
            counters,
            manifest: art.manifest.clone(),
            steps: 0,
            entries: art.entries.len(),
        })
    }
}

fn de(e: cudarc::driver::DriverError) -> String {
    e.to_string()
}

impl GpuRunner {
    /// Loads `art` on device `ordinal` with weights from `weights`; checks the device can
    /// hold every CTA of the schedule at once (a persistent kernel whose CTAs wait on each
    /// other would hang otherwise).
    pub fn new(
        art: &crate::artifact::Artifact,
        weights: &dyn mkc_ir::weights::WeightSource,
        ordinal: usize,
    ) -> Result<GpuRunner, String> {
        let info = probe(ordinal)?;
        if info.compute_capability.0 < 9 {
            return Err(format!(
                "the artifact targets {} but device {ordinal} ({}) is compute capability {}.{}",
                art.manifest.target,
                info.name,
                info.compute_capability.0,
                info.compute_capability.1
            ));
        }
        if art.manifest.ctas > info.sms as usize {
            return Err(format!(
                "the schedule runs {} CTAs at once but device {ordinal} has {} SMs: compile with --sms {}",
                art.manifest.ctas, info.sms, info.sms
            ));
        }
        let program = crate::image::Program::parse(&art.program, "program.mlir")?;
        // Progress on stderr for models big enough to wait for (a line per tenth).
        let mut shown = 0u64;
        let started = std::time::Instant::now();
        let images = program.initial_images_with(weights, &mut |done, total| {
            if total < (1 << 28) {
                return;
            }
            let tenth = done * 10 / total.max(1);
            if tenth > shown {
                shown = tenth;
                eprintln!(
                    "mkc: weights {:>3}% ({:.2} of {:.2} GB, {:.1} s)",
                    tenth * 10,
                    done as f64 / 1e9,
                    total as f64 / 1e9,
                    started.elapsed().as_secs_f64()
                );
            }
        })?;
        let ctx = ctx(ordinal)?;
        let stream = ctx.default_stream();
        let main = Launch::new(&ctx, &stream, art, &info, ordinal)?;
        let mut sizes: Vec<usize> = images.iter().map(Vec::len).collect();
        let mut alternates = Vec::new();
        for alt in art.alternates() {
            let sa = alt.artifact;
            if sa.manifest.ctas > info.sms as usize {
                return Err(format!(
                    "the {} steps' schedule runs {} CTAs at once but device {ordinal} has {} SMs",
                    alt.name, sa.manifest.ctas, info.sms
                ));
            }
            let file = format!("{}/program.mlir", alt.name);
            let sp = crate::image::Program::parse(&sa.program, &file)?;
            crate::image::shares_memory(&program, &sp, &mut sizes)
                .map_err(|e| format!("{file}: {e}"))?;
            let launch = Launch::new(&ctx, &stream, sa, &info, ordinal)?;
            alternates.push(AlternateLaunch {
                name: alt.name,
                positions: alt.positions,
                launch,
                program: sp,
            });
        }
        let mut buffers = Vec::new();
        for (img, &size) in images.iter().zip(&sizes) {
            // Empty buffers still get a (tiny) allocation: the kernel takes every pointer. A
            // buffer another program needs bigger (its workspace) is allocated at that size.
            let b = if size == 0 {
                stream.alloc_zeros::<u8>(16).map_err(de)?
            } else if size > img.len() {
                let mut b = stream.alloc_zeros::<u8>(size).map_err(de)?;
                if !img.is_empty() {
                    stream
                        .memcpy_htod(img, &mut b.slice_mut(..img.len()))
                        .map_err(de)?;
                }
                b
            } else {
                stream.clone_htod(img).map_err(de)?
            };
            buffers.push(b);
        }
        stream.synchronize().map_err(de)?;
        Ok(GpuRunner {
            ctx,
            stream,
            program,
            buffers,
            main,
            alternates,
            active: None,
            trace: None,
        })
    }

    /// The program the next launch runs.
    pub fn active_program(&self) -> &crate::image::Program {
        match self.active {
            Some(i) => &self.alternates[i].program,
            None => &self.program,
        }
    }

    /// Which program the next launch runs: `main`, or an other's folder (`short`, `long`).
    pub fn active_name(&self) -> &'static str {
        self.active.map_or("main", |i| self.alternates[i].name)
    }

    /// Writes the given inputs (`None`: keep what the device holds, e.g. the KV caches),
    /// launches one step, and reads back the returned values numbered in `want`.
    pub fn call(
        &mut self,
        inputs: &[Option<&crate::tensor::Tensor>],
        want: &[usize],
    ) -> Result<Vec<crate::tensor::Tensor>, String> {
        if inputs.len() != self.program.inputs.len() {
            return Err(format!(
                "the program takes {} inputs, got {}",
                self.program.inputs.len(),
                inputs.len()
            ));
        }
        // Write the values' bytes in place: each touched buffer downloaded once, patched,
        // uploaded once (the inputs' buffer is a few bytes).
        let mut patched: std::collections::BTreeMap<usize, Vec<u8>> = Default::default();
        for (i, t) in inputs.iter().enumerate() {
            let Some(t) = t else { continue };
            let v = self.program.inputs[i];
            let l = self.program.layout(v)?;
            let ty = self.program.ty(v)?;
            if t.ty != ty {
                return Err(format!("input #{i} has type {}, expected {ty}", t.ty));
            }
            let b = l.buffer.index();
            if let std::collections::btree_map::Entry::Vacant(e) = patched.entry(b) {
                e.insert(self.stream.clone_dtoh(&self.buffers[b]).map_err(de)?);
            }
            let st = self.program.storage_ty(v)?;
            let stored;
            let t = if st == ty {
                t
            } else {
                stored = crate::tensor::Tensor::from_fn(st, |i| t.get(i));
                &stored
            };
            crate::image::encode(l, t, patched.get_mut(&b).expect("inserted"))?;
        }
        for (b, host) in &patched {
            self.stream
                .memcpy_htod(host, &mut self.buffers[*b])
                .map_err(de)?;
        }
        // The position given (if any) chooses the program.
        if let Some(pi) = self.main.manifest.position_input {
            if let Some(Some(t)) = inputs.get(pi) {
                let pos = t.get(0).i();
                self.active = self
                    .alternates
                    .iter()
                    .position(|a| a.positions.contains(&pos));
            }
        }
        self.launch()?;
        self.stream
            .synchronize()
            .map_err(|e| format!("the kernel failed in step {}: {e}", self.steps()))?;
        let mut out = Vec::new();
        let mut cache: std::collections::HashMap<usize, Vec<u8>> = Default::default();
        for &k in want {
            let program = self.active_program();
            let v = *program
                .returns
                .get(k)
                .ok_or_else(|| format!("the program has no result #{k}"))?;
            let l = program.layout(v)?.clone();
            let b = l.buffer.index();
            if let std::collections::hash_map::Entry::Vacant(e) = cache.entry(b) {
                e.insert(self.stream.clone_dtoh(&self.buffers[b]).map_err(de)?);
            }
            let (ty, st) = (program.ty(v)?, program.storage_ty(v)?);
            let t = crate::image::decode(&l, &st, &cache[&b])?;
            out.push(if st == ty {
                t
            } else {
                crate::tensor::Tensor::from_fn(ty, |i| t.get(i))
            });
        }
        Ok(out)
    }

    /// One launch of the kernel (step number `steps + 1`), not waited for.
    pub fn launch(&mut self) -> Result<(), String> {
        use cudarc::driver::{LaunchConfig, PushKernelArg};
        let l = match self.active {
            Some(i) => &mut self.alternates[i].launch,
            None => &mut self.main,
        };
        l.steps += 1;
        let cfg = LaunchConfig {
            grid_dim: (l.manifest.ctas as u32, 1, 1),
            block_dim: (l.manifest.threads, 1, 1),
            shared_mem_bytes: l.manifest.dynamic_smem,
        };
        let stride = l.manifest.scratch_per_cta as i64;
        let step = l.steps;
        let mut b = self.stream.launch_builder(&l.func);
        for buf in &self.buffers {
            b.arg(buf);
        }
        for t in &l.tables {
            b.arg(t);
        }
        let no_trace = 0u64;
        b.arg(&l.scratch).arg(&stride).arg(&l.counters).arg(&step);
        match &self.trace {
            Some(t) => b.arg(t),
            None => b.arg(&no_trace),
        };
        // SAFETY: the kernel's parameters are, in order, one global pointer per buffer of the
        // program (each allocated at its full size: the programs of an artifact share the
        // buffers, at the larger size where they differ), the task table, queue entries and
        // queues (as the compiler wrote them), the scratch pointer and per-CTA stride
        // (ctas * stride bytes allocated), the counters (4 bytes per event) and the step
        // (this program's launches: its counters count only those).
        unsafe { b.launch(cfg) }.map_err(|e| format!("launching step {step}: {e}"))?;
        Ok(())
    }

    /// Launches of the program the next launch runs, so far.
    fn steps(&self) -> u32 {
        self.active_launch().steps
    }

    /// The kernel and tables the next launch runs.
    fn active_launch(&self) -> &Launch {
        match self.active {
            Some(i) => &self.alternates[i].launch,
            None => &self.main,
        }
    }

    /// Queue entries of the program the next launch runs.
    fn entries(&self) -> usize {
        self.active_launch().entries
    }

    /// One step with the profile on: per queue entry (in the schedule's queue order), the
    /// globaltimer (ns) at its start, after its wait and at its end.
    pub fn trace_step(&mut self) -> Result<Vec<[u64; 3]>, String> {
        self.trace = Some(
            self.stream
                .alloc_zeros::<u64>((3 * self.entries()).max(3))
                .map_err(de)?,
        );
        let r = self.launch().and_then(|_| {
            self.stream
                .synchronize()
                .map_err(|e| format!("the kernel failed in step {}: {e}", self.steps()))
        });
        let t = self.trace.take().expect("set above");
        r?;
        let w = self.stream.clone_dtoh(&t).map_err(de)?;
        let entries = self.entries();
        Ok(w.chunks(3)
            .take(entries)
            .map(|c| [c[0], c[1], c[2]])
            .collect())
    }

    /// Median milliseconds per step over `n` timed launches (CUDA events), after `warmup`.
    pub fn time_steps(&mut self, warmup: usize, n: usize) -> Result<f64, String> {
        for _ in 0..warmup {
            self.launch()?;
        }
        self.stream
            .synchronize()
            .map_err(|e| format!("the kernel failed: {e}"))?;
        let mut ms = Vec::with_capacity(n);
        for _ in 0..n.max(1) {
            let start = self
                .ctx
                .new_event(Some(sys::CUevent_flags::CU_EVENT_DEFAULT))
                .map_err(de)?;
            let end = self
                .ctx
                .new_event(Some(sys::CUevent_flags::CU_EVENT_DEFAULT))
                .map_err(de)?;
            start.record(&self.stream).map_err(de)?;
            self.launch()?;
            end.record(&self.stream).map_err(de)?;
            end.synchronize()
                .map_err(|e| format!("the kernel failed in step {}: {e}", self.steps()))?;
            ms.push(start.elapsed_ms(&end).map_err(de)? as f64);
        }
        ms.sort_by(f64::total_cmp);
        Ok(ms[ms.len() / 2])
    }
}
