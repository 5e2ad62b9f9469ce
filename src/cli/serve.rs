//! `mkc serve`.

use super::compile::{ModelArgs, TargetArgs};
use super::finish;
use super::run::EngineArgs;
use clap::Args;
use mkc_driver::run::{eos_ids, RunOptions};
use mkc_driver::sample::SamplingOptions;
use mkc_serve::ServeOptions;
use std::process::ExitCode;

#[derive(Args)]
pub struct ServeArgs {
    #[command(flatten)]
    pub model: ModelArgs,
    #[command(flatten)]
    pub target: TargetArgs,
    /// The address to listen on (0.0.0.0: every interface).
    #[arg(long, default_value = "127.0.0.1")]
    pub host: String,
    /// The port to listen on (0: any free one; the first line on stdout names it).
    #[arg(long, default_value_t = 8000)]
    pub port: u16,
    #[command(flatten)]
    pub engine: EngineArgs,
    /// The name requests give as `model` (default: the model's file or folder name); a
    /// request naming another model gets 404 model_not_found.
    #[arg(long, value_name = "NAME")]
    pub model_name: Option<String>,
}

pub fn run_serve(a: ServeArgs) -> ExitCode {
    finish((|| {
        let model = &a.model.model;
        // The model's end-of-sequence tokens end every generation (as `mkc run`'s).
        let eos = match mkc_driver::run::tokenizer_of(model)? {
            Some(i) => i.eos,
            None => eos_ids(model)?,
        };
        if a.model.ctx < 1 {
            return Err(format!("--ctx must be at least 1, not {}", a.model.ctx));
        }
        let run = RunOptions {
            model: a.model.options(),
            engine: a.engine.engine(),
            level: a.engine.level.0,
            artifact: a.engine.artifact.clone(),
            target: a.target.spec()?,
            banned: Vec::new(),
            eos: eos.into_iter().map(i64::from).collect(),
            // Each request brings its own.
            sampling: SamplingOptions::default(),
        };
        mkc_serve::serve(ServeOptions {
            model: model.clone(),
            run,
            context: a.model.ctx as usize,
            host: a.host.clone(),
            port: a.port,
            model_name: a.model_name.clone(),
        })
    })())
}
