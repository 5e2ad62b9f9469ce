//! The engine's worker: one thread owns the [`Session`] and serves the queued jobs one at a
//! time, in arrival order, streaming each one's text back as it is generated.

use crate::api::ApiError;
use crate::metrics::{Metrics, CLIENT_CLOSED};
use mkc_driver::run::{StopReason, TokenizerInfo};
use mkc_driver::sample::SamplingOptions;
use mkc_driver::session::Session;
use mkc_driver::stream::TextStream;
use std::net::SocketAddr;
use std::ops::ControlFlow;
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::time::Instant;
use tokio::sync::mpsc::UnboundedSender;

/// One request's generation, as the handler queues it.
pub struct Job {
    /// The whole prompt (the worker reuses what the cache already holds of it).
    pub prompt: Vec<i64>,
    pub max_new: usize,
    pub sampling: SamplingOptions,
    pub stops: Vec<String>,
    /// Where the text goes; closed when the client has gone away.
    pub events: UnboundedSender<Event>,
    /// For the log line and the time to first token.
    pub endpoint: &'static str,
    pub peer: SocketAddr,
    pub received: Instant,
}

/// What the worker sends back for a job.
#[derive(Debug)]
pub enum Event {
    /// New text (possibly empty where the model has no tokenizer) and the tokens behind it.
    Text {
        text: String,
        token_ids: Vec<i64>,
    },
    Done(Outcome),
    Failed(ApiError),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Outcome {
    /// OpenAI's finish_reason: "stop" (end of sequence or a stop string) or "length".
    pub finish_reason: &'static str,
    pub prompt_tokens: usize,
    /// Of the prompt, the tokens the cache already held.
    pub cached_tokens: usize,
    pub completion_tokens: usize,
}

/// What the worker shares with the handlers.
pub struct Shared {
    pub metrics: Metrics,
    /// The model's tokenizer, where it has one.
    pub tokenizer: Option<TokenizerInfo>,
    /// The model's end-of-sequence tokens.
    pub eos: Vec<i64>,
    /// Set at Ctrl-C: the running generation ends at its next token, queued ones are refused.
    pub shutting_down: AtomicBool,
}

/// Opens the session on a new thread, which then serves `jobs` until every sender is gone.
/// Returns once the session is open (with its context), or with the error that kept it from
/// opening.
pub fn start(
    open: impl FnOnce() -> Result<Session, String> + Send + 'static,
    jobs: mpsc::Receiver<Job>,
    shared: Arc<Shared>,
) -> Result<(usize, std::thread::JoinHandle<()>), String> {
    let (opened, result) = mpsc::channel();
    let worker = std::thread::Builder::new()
        .name("mkc-engine".into())
        .spawn(move || {
            let mut session = match open() {
                Ok(s) => {
                    let _ = opened.send(Ok(s.context()));
                    s
                }
                Err(e) => {
                    let _ = opened.send(Err(e));
                    return;
                }
            };
            for job in jobs {
                shared.metrics.queue_depth.fetch_sub(1, Ordering::Relaxed);
                serve(&mut session, job, &shared);
            }
        })
        .map_err(|e| format!("cannot start the engine's thread: {e}"))?;
    match result.recv() {
        Ok(Ok(context)) => Ok((context, worker)),
        Ok(Err(e)) => Err(e),
        Err(_) => Err("the engine's thread ended while loading the model".into()),
    }
}

/// Serves one job and records it (the metrics and one log line) before its last event
/// goes out, so that a client that has its answer sees it counted.
fn serve(session: &mut Session, job: Job, shared: &Shared) {
    let shutting_down = || shared.shutting_down.load(Ordering::Relaxed);
    let (status, note, last) = if job.events.is_closed() {
        (CLIENT_CLOSED, "client went away while queued".into(), None)
    } else if shutting_down() {
        let e = ApiError::server(503, "the server is shutting down");
        (503, e.message.clone(), Some(Event::Failed(e)))
    } else {
        shared.metrics.running.fetch_add(1, Ordering::Relaxed);
        // An engine that panics fails this request, not the server; its cache is then
        // not trusted.
        let result = std::panic::catch_unwind(AssertUnwindSafe(|| generate(session, &job, shared)));
        shared.metrics.running.fetch_sub(1, Ordering::Relaxed);
        let result = result.unwrap_or_else(|p| {
            session.truncate(0);
            let what = p
                .downcast_ref::<String>()
                .map(String::as_str)
                .or_else(|| p.downcast_ref::<&str>().copied())
                .unwrap_or("a panic");
            Err(format!("internal error in the engine: {what}"))
        });
        match result {
            Ok(Some(o)) => (
                200,
                format!(
                    "prompt={} cached={} generated={} finish={}",
                    o.prompt_tokens, o.cached_tokens, o.completion_tokens, o.finish_reason
                ),
                Some(Event::Done(o)),
            ),
            Ok(None) if shutting_down() && !job.events.is_closed() => {
                let e = ApiError::server(503, "the server is shutting down");
                (503, e.message.clone(), Some(Event::Failed(e)))
            }
            Ok(None) => (
                CLIENT_CLOSED,
                "client went away: generation cancelled".into(),
                None,
            ),
            Err(e) => (
                500,
                e.clone(),
                Some(Event::Failed(ApiError::server(500, e))),
            ),
        }
    };
    shared.metrics.request(job.endpoint, status);
    eprintln!(
        "mkc serve: {} POST {} {status} {:.3}s {note}",
        job.peer,
        job.endpoint,
        job.received.elapsed().as_secs_f64()
    );
    if let Some(event) = last {
        let _ = job.events.send(event);
    }
}

/// Runs the job's generation, sending its text as it comes (the caller sends the end);
/// `None` when the client went away (or the server is shutting down) before it ended.
fn generate(session: &mut Session, job: &Job, shared: &Shared) -> Result<Option<Outcome>, String> {
    // Reuse what the cache holds of the prompt; at least its last token is fed again, for
    // the logits of the first new token.
    let common = session
        .tokens()
        .iter()
        .zip(&job.prompt)
        .take_while(|(a, b)| a == b)
        .count();
    let cached = common.min(job.prompt.len() - 1);
    session.truncate(cached);
    let mut stream = shared
        .tokenizer
        .as_ref()
        .map(|t| TextStream::of_tokenizer(&t.tokenizer, &job.stops));
    let mut pending: Vec<i64> = Vec::new();
    let mut seen = 0;
    let mut cancelled = false;
    let mut last = None::<Instant>;
    let mut on_token = |t: i64| -> Result<ControlFlow<()>, String> {
        let now = Instant::now();
        match last {
            None => shared
                .metrics
                .first_token(now.duration_since(job.received).as_secs_f64()),
            Some(l) => shared
                .metrics
                .next_token(now.duration_since(l).as_secs_f64()),
        }
        last = Some(now);
        seen += 1;
        pending.push(t);
        let (text, stop) = match &mut stream {
            Some(s) => {
                let piece = s.push(t as u32)?;
                (piece.text, piece.stop)
            }
            None => (String::new(), false),
        };
        // Tokens whose text is not whole yet wait for it (a tokenizer-less model has none).
        if !text.is_empty() || stream.is_none() {
            let token_ids = std::mem::take(&mut pending);
            let gone = job.events.send(Event::Text { text, token_ids }).is_err();
            cancelled |= gone;
        }
        cancelled |= job.events.is_closed() || shared.shutting_down.load(Ordering::Relaxed);
        Ok(if cancelled || stop {
            ControlFlow::Break(())
        } else {
            ControlFlow::Continue(())
        })
    };
    let g = session.generate(
        &job.prompt[cached..],
        job.max_new,
        &job.sampling,
        &shared.eos,
        &mut on_token,
    )?;
    shared
        .metrics
        .generation(job.prompt.len(), cached, g.generated.len());
    if cancelled {
        return Ok(None);
    }
    // The rest: text held back for a stop string, and an end-of-sequence token.
    let text = match &mut stream {
        Some(s) => s.finish()?.text,
        None => String::new(),
    };
    pending.extend_from_slice(&g.generated[seen.min(g.generated.len())..]);
    if !text.is_empty() || !pending.is_empty() {
        let _ = job.events.send(Event::Text {
            text,
            token_ids: pending,
        });
    }
    let finish_reason = match g.stop_reason {
        StopReason::Eos | StopReason::StopString => "stop",
        StopReason::MaxNewTokens => "length",
    };
    Ok(Some(Outcome {
        finish_reason,
        prompt_tokens: job.prompt.len(),
        cached_tokens: cached,
        completion_tokens: g.generated.len(),
    }))
}
