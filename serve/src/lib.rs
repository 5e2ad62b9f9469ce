//! mkc-serve: `mkc serve`, an OpenAI-compatible HTTP server (tokio + axum) over one loaded
//! model. It owns the HTTP API (`/v1/completions`, `/v1/chat/completions` whole or streamed
//! as server-sent events, `/v1/models`, `/health`, `/metrics`), the checks of requests
//! ([`api`]), the queue in front of the engine,
//! whose one worker thread serves a sequence at a time ([`engine`]), and the counters
//! ([`metrics`]). It does not own decoding (the driver's session, sampling and text
//! stream, chat templates) nor command-line parsing (the `mkc` binary).
//!
//! A crate of its own so that the async stack stays out of the driver and its test
//! binaries.

pub mod api;
pub mod engine;
mod http;
pub mod metrics;

use mkc_driver::run::{tokenizer_of, RunOptions};
use mkc_driver::session::Session;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{mpsc, Arc};

/// What `mkc serve` was asked for.
pub struct ServeOptions {
    pub model: PathBuf,
    /// The engine and how it decodes; `eos` ends every generation.
    pub run: RunOptions,
    /// Positions the KV cache holds (prompt and generated tokens of a request together), at
    /// most the model's max_position_embeddings (a larger one is lowered to it).
    pub context: usize,
    pub host: String,
    pub port: u16,
    /// The name requests give as `model` (default: the model's file or folder name).
    pub model_name: Option<String>,
}

/// Loads the model, serves until Ctrl-C (or SIGTERM), then ends the running generation and
/// returns. The first line on stdout is `mkc serve: listening on http://ADDRESS` once the
/// model is loaded; a line per request goes to stderr.
pub fn serve(o: ServeOptions) -> Result<(), String> {
    let info = tokenizer_of(&o.model)?;
    let chat = match &info {
        Some(i) => mkc_driver::chat::ChatTemplate::of_model(&o.model, i)?,
        None => None,
    };
    let config = mkc_frontends::HfModel::open(&o.model)?.config;
    // Prompt token ids are checked against the vocabulary.
    let vocab = config.vocab_size;
    let context = o
        .context
        .min(config.max_position_embeddings.max(1) as usize);
    let model_name = o.model_name.clone().unwrap_or_else(|| {
        let p = o.model.canonicalize().unwrap_or_else(|_| o.model.clone());
        let p = if p.file_name().is_some_and(|n| n == "config.json") {
            p.parent().map(PathBuf::from).unwrap_or(p)
        } else {
            p
        };
        p.file_name()
            .map_or("model".into(), |n| n.to_string_lossy().into_owned())
    });
    if info.is_none() {
        eprintln!("mkc serve: warning: {} has no tokenizer: only /v1/completions with token-id prompts will work (answers carry token_ids and empty text)", o.model.display());
    } else if chat.is_none() {
        eprintln!(
            "mkc serve: warning: {} has no chat template: /v1/chat/completions is refused",
            o.model.display()
        );
    }
    let shared = Arc::new(engine::Shared {
        metrics: metrics::Metrics::default(),
        tokenizer: info,
        eos: o.run.eos.clone(),
        shutting_down: AtomicBool::new(false),
    });
    eprintln!(
        "mkc serve: loading {} on the {} engine",
        o.model.display(),
        o.run.engine.name()
    );
    let (jobs, queue) = mpsc::channel();
    let path = o.model.clone();
    let mut run = o.run.clone();
    run.model.ctx = context as i64;
    let (context, worker) = engine::start(
        move || Session::open(&path, &run, context),
        queue,
        shared.clone(),
    )?;
    let app = Arc::new(http::App {
        shared: shared.clone(),
        jobs,
        model_name,
        chat,
        context,
        vocab,
        started: http::unix_now(),
        next_id: AtomicU64::new(0),
    });
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the async runtime: {e}"))?;
    let served = runtime.block_on(listen(&o, app, shared.clone()));
    // Ends whatever tasks are left (and with them the last senders of the queue).
    runtime.shutdown_timeout(std::time::Duration::from_secs(2));
    served?;
    if worker.join().is_err() {
        return Err("the engine's thread panicked".into());
    }
    eprintln!("mkc serve: shut down");
    Ok(())
}

async fn listen(
    o: &ServeOptions,
    app: Arc<http::App>,
    shared: Arc<engine::Shared>,
) -> Result<(), String> {
    let listener = tokio::net::TcpListener::bind((o.host.as_str(), o.port))
        .await
        .map_err(|e| format!("cannot listen on {}:{}: {e}", o.host, o.port))?;
    let addr = listener
        .local_addr()
        .map_err(|e| format!("cannot read the bound address: {e}"))?;
    println!("mkc serve: listening on http://{addr}");
    use std::io::Write;
    let _ = std::io::stdout().flush();
    eprintln!(
        "mkc serve: serving `{}` ({} positions of context) on http://{addr}; Ctrl-C stops",
        app.model_name, app.context
    );
    let router = http::router(app);
    axum::serve(
        listener,
        router.into_make_service_with_connect_info::<std::net::SocketAddr>(),
    )
    .with_graceful_shutdown(async move {
        shutdown_signal().await;
        eprintln!("mkc serve: shutting down");
        shared.shutting_down.store(true, Ordering::Relaxed);
    })
    .await
    .map_err(|e| format!("the server failed: {e}"))
}

/// Ctrl-C, or SIGTERM on Unix.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
}
