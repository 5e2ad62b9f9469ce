//! mkc-driver: the compiler as a library. It owns what turns a model into outputs at any
//! level: the registry of every crate's passes ([`pass_registry`]) and running pipelines
//! with it. It does not own any pass, op or kernel code (the level crates), nor command-line
//! parsing (the `mkc` binary).

use mkc_passes::manager::RunReport;
use mkc_passes::PassRegistry;

/// Every pass mkc ships: the generic ones, fusion's, the task level's and the kernel's.
pub fn pass_registry() -> PassRegistry {
    let mut r = PassRegistry::new();
    mkc_passes::register_passes(&mut r);
    mkc_fusion::register_passes(&mut r);
    mkc_tasks::register_passes(&mut r);
    r
}

/// Runs `pipeline` over `body` with every pass mkc ships, verifying after each pass.
pub fn run_pipeline(body: &mut mkc_ir::Body, pipeline: &str) -> Result<RunReport, String> {
    mkc_passes::driver::run_pipeline(body, pipeline, &pass_registry())
}
