//! The CUDA device as the runtime sees it (feature `cuda`; libcuda is loaded at run time, so
//! a machine without a driver gets a clear error, not a crash).

use cudarc::driver::{sys, CudaContext};

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
    /// Elements whose result differs from the host's `x * factor`.
    pub mismatches: usize,
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
    let mismatches = host
        .iter()
        .zip(&got)
        .filter(|(x, y)| (*x * factor).to_bits() != y.to_bits())
        .count();
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
        median_us: us[us.len() / 2],
    })
}
