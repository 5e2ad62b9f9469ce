//! The HTTP side: routes, request checks that need the model (its tokenizer, template,
//! vocabulary, context), the job handed to the engine, and the answers in OpenAI's shapes,
//! whole or as server-sent events.

use crate::api::{self, ApiError, Options, Prompt};
use crate::engine::{Event, Job, Outcome, Shared};
use axum::body::{Body, Bytes};
use axum::extract::{ConnectInfo, State};
use axum::http::{header, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use mkc_driver::chat::ChatTemplate;
use mkc_driver::run::TokenizerInfo;
use serde_json::{json, Value};
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc};
use std::time::Instant;
use tokio::sync::mpsc::{unbounded_channel, UnboundedReceiver};

/// The largest request body read (a prompt of a few hundred thousand tokens' text).
const BODY_LIMIT: usize = 4 << 20;

/// A body over [`BODY_LIMIT`] is still read (and dropped) up to this size, so that the
/// client, still sending, gets the 413 rather than a reset connection.
const DRAIN_LIMIT: usize = 64 << 20;

/// OpenAI's default `max_tokens` for a completion (a chat's is the rest of the context).
const COMPLETION_MAX_TOKENS: usize = 16;

/// What every handler shares.
pub struct App {
    pub shared: Arc<Shared>,
    pub jobs: mpsc::Sender<Job>,
    pub model_name: String,
    pub chat: Option<ChatTemplate>,
    /// Positions the session's cache holds: prompt and generated tokens together.
    pub context: usize,
    pub vocab: i64,
    /// Unix time the server started (the model's `created`).
    pub started: u64,
    pub next_id: AtomicU64,
}

pub fn router(app: Arc<App>) -> Router {
    Router::new()
        .route("/v1/completions", post(completions))
        .route("/v1/chat/completions", post(chat_completions))
        .route("/v1/models", get(models))
        .route("/health", get(health))
        .route("/metrics", get(metrics))
        .fallback(not_found)
        .method_not_allowed_fallback(not_found)
        .with_state(app)
}

pub fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Endpoint {
    Completions,
    Chat,
}

impl Endpoint {
    fn path(self) -> &'static str {
        match self {
            Endpoint::Completions => "/v1/completions",
            Endpoint::Chat => "/v1/chat/completions",
        }
    }
}

impl App {
    /// Counts and logs a request the handler answered itself.
    fn record(
        &self,
        peer: SocketAddr,
        method: &Method,
        path: &str,
        status: u16,
        start: Instant,
        note: &str,
    ) {
        self.shared.metrics.request(path, status);
        eprintln!(
            "mkc serve: {peer} {method} {path} {status} {:.3}s {note}",
            start.elapsed().as_secs_f64()
        );
    }

    fn check_model(&self, o: &Options) -> Result<(), ApiError> {
        match &o.model {
            Some(m) if *m != self.model_name => Err(ApiError {
                status: 404,
                message: format!(
                    "The model `{m}` does not exist: this server serves `{}`",
                    self.model_name
                ),
                kind: "invalid_request_error",
                param: Some("model".into()),
                code: Some("model_not_found"),
            }),
            _ => Ok(()),
        }
    }

    fn tokenizer(&self, what: &str) -> Result<&TokenizerInfo, ApiError> {
        self.shared.tokenizer.as_ref().ok_or_else(|| {
            ApiError::bad_body(format!(
                "{what} needs a tokenizer, and this model has none (no tokenizer.json beside it, no tokenizer in its GGUF file): send the prompt as an array of token ids to /v1/completions"
            ))
        })
    }

    fn encode(&self, text: &str, special: bool, what: &str) -> Result<Vec<i64>, ApiError> {
        let t = self.tokenizer(what)?;
        let enc = t
            .tokenizer
            .encode(text, special)
            .map_err(|e| ApiError::server(500, format!("cannot encode the prompt: {e}")))?;
        Ok(enc.get_ids().iter().map(|&i| i64::from(i)).collect())
    }

    /// The request's prompt tokens and options, checked against the model.
    fn prepare(&self, endpoint: Endpoint, body: &[u8]) -> Result<(Vec<i64>, Options), ApiError> {
        let body = api::parse_body(body)?;
        let (prompt, options) = match endpoint {
            Endpoint::Completions => {
                let r = api::parse_completion(&body)?;
                self.check_model(&r.options)?;
                let prompt = match r.prompt {
                    Prompt::Text(t) => self.encode(&t, true, "a text prompt")?,
                    Prompt::Tokens(ids) => ids,
                };
                (prompt, r.options)
            }
            Endpoint::Chat => {
                let r = api::parse_chat(&body)?;
                self.check_model(&r.options)?;
                self.tokenizer("a chat")?;
                let t = self.chat.as_ref().ok_or_else(|| {
                    ApiError::bad_body("this model has no chat template (no chat_template in its tokenizer_config.json or GGUF metadata, no chat_template.jinja): use /v1/completions")
                })?;
                let text = t
                    .render(&r.messages, true)
                    .map_err(|e| ApiError::invalid("messages", e))?;
                // The template writes the special tokens itself, as transformers does.
                (self.encode(&text, false, "a chat")?, r.options)
            }
        };
        if prompt.is_empty() {
            return Err(ApiError::invalid(
                "prompt",
                "the prompt encodes to no tokens",
            ));
        }
        if let Some(bad) = prompt.iter().find(|&&t| t >= self.vocab) {
            return Err(ApiError::invalid(
                "prompt",
                format!(
                    "prompt token {bad} is outside the vocabulary (0..{})",
                    self.vocab
                ),
            ));
        }
        if !options.stop.is_empty() {
            self.tokenizer("'stop'")?;
        }
        let room = self.context.saturating_sub(prompt.len());
        let max_tokens = options.max_tokens.unwrap_or(match endpoint {
            Endpoint::Completions => COMPLETION_MAX_TOKENS.min(room),
            Endpoint::Chat => room,
        });
        if prompt.len() + max_tokens > self.context || max_tokens == 0 {
            return Err(ApiError::invalid(
                "max_tokens",
                format!(
                    "This model's maximum context length is {} tokens. However, you requested {} tokens ({} in the prompt, {max_tokens} in the completion). Please reduce the prompt or the completion.",
                    self.context,
                    prompt.len() + max_tokens,
                    prompt.len()
                ),
            )
            .with_code("context_length_exceeded"));
        }
        Ok((
            prompt,
            Options {
                max_tokens: Some(max_tokens),
                ..options
            },
        ))
    }
}

fn json_response(status: u16, body: String) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (status, [(header::CONTENT_TYPE, "application/json")], body).into_response()
}

fn error_response(e: &ApiError) -> Response {
    json_response(e.status, e.body())
}

async fn completions(
    State(app): State<Arc<App>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    body: Body,
) -> Response {
    generation(app, peer, body, Endpoint::Completions).await
}

async fn chat_completions(
    State(app): State<Arc<App>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    body: Body,
) -> Response {
    generation(app, peer, body, Endpoint::Chat).await
}

/// Checks a generation request and queues it; answers when it is done, or streams it.
async fn generation(app: Arc<App>, peer: SocketAddr, body: Body, endpoint: Endpoint) -> Response {
    let received = Instant::now();
    let bytes = read_body(body).await;
    // Parsing, the template and the tokenizer take time on long prompts: off the async
    // threads.
    let prepared = match bytes {
        Ok(b) => {
            let app = app.clone();
            tokio::task::spawn_blocking(move || app.prepare(endpoint, &b))
                .await
                .unwrap_or_else(|e| Err(ApiError::server(500, format!("internal error: {e}"))))
        }
        Err(e) => Err(e),
    };
    let (prompt, options) = match prepared {
        Ok(p) => p,
        Err(e) => {
            app.record(
                peer,
                &Method::POST,
                endpoint.path(),
                e.status,
                received,
                &e.message,
            );
            return error_response(&e);
        }
    };
    let (events, rx) = unbounded_channel();
    let job = Job {
        prompt,
        max_new: options.max_tokens.unwrap_or(COMPLETION_MAX_TOKENS),
        sampling: options.sampling.clone(),
        stops: options.stop.clone(),
        events,
        endpoint: endpoint.path(),
        peer,
        received,
    };
    let queue = &app.shared.metrics.queue_depth;
    queue.fetch_add(1, Ordering::Relaxed);
    if app.jobs.send(job).is_err() {
        queue.fetch_sub(1, Ordering::Relaxed);
        let e = ApiError::server(503, "the engine has stopped");
        app.record(
            peer,
            &Method::POST,
            endpoint.path(),
            503,
            received,
            &e.message,
        );
        return error_response(&e);
    }
    let n = app.next_id.fetch_add(1, Ordering::Relaxed);
    let answer = Answer {
        id: match endpoint {
            Endpoint::Completions => format!("cmpl-mkc{}-{n}", app.started),
            Endpoint::Chat => format!("chatcmpl-mkc{}-{n}", app.started),
        },
        created: unix_now(),
        model: app.model_name.clone(),
        chat: endpoint == Endpoint::Chat,
    };
    if options.stream {
        stream(answer, rx, options.include_usage)
    } else {
        whole(answer, rx).await
    }
}

/// The request's body, at most [`BODY_LIMIT`] bytes (413 beyond).
async fn read_body(mut body: Body) -> Result<Vec<u8>, ApiError> {
    use http_body_util::BodyExt;
    let mut bytes = Vec::new();
    let mut total = 0;
    while let Some(frame) = body.frame().await {
        let frame =
            frame.map_err(|e| ApiError::bad_body(format!("cannot read the request body: {e}")))?;
        if let Ok(data) = frame.into_data() {
            total += data.len();
            if total <= BODY_LIMIT {
                bytes.extend_from_slice(&data);
            } else if total > DRAIN_LIMIT {
                break;
            }
        }
    }
    if total > BODY_LIMIT {
        return Err(ApiError {
            status: 413,
            ..ApiError::bad_body(format!("the request body is over {BODY_LIMIT} bytes"))
        });
    }
    Ok(bytes)
}

/// What every answer of one request carries.
struct Answer {
    id: String,
    created: u64,
    model: String,
    chat: bool,
}

fn usage(o: &Outcome) -> Value {
    json!({
        "prompt_tokens": o.prompt_tokens,
        "completion_tokens": o.completion_tokens,
        "total_tokens": o.prompt_tokens + o.completion_tokens,
        "prompt_tokens_details": {"cached_tokens": o.cached_tokens},
    })
}

impl Answer {
    /// The whole answer (`token_ids`: mkc's addition, the generated tokens).
    fn whole(&self, text: String, token_ids: Vec<i64>, o: &Outcome) -> Value {
        let (object, choice) = if self.chat {
            let message = json!({"role": "assistant", "content": text});
            ("chat.completion", json!({"index": 0, "message": message}))
        } else {
            ("text_completion", json!({"index": 0, "text": text}))
        };
        let mut choice = choice;
        choice["logprobs"] = Value::Null;
        choice["finish_reason"] = json!(o.finish_reason);
        choice["token_ids"] = json!(token_ids);
        json!({
            "id": self.id, "object": object, "created": self.created, "model": self.model,
            "choices": [choice], "usage": usage(o),
        })
    }

    /// One server-sent event of a streamed answer: a chunk with `choices` (none for the
    /// usage chunk).
    fn chunk(&self, choice: Option<Value>, usage: Option<Value>, with_usage: bool) -> String {
        let object = if self.chat {
            "chat.completion.chunk"
        } else {
            "text_completion"
        };
        let mut c = json!({
            "id": self.id, "object": object, "created": self.created, "model": self.model,
            "choices": choice.into_iter().collect::<Vec<_>>(),
        });
        if with_usage {
            c["usage"] = usage.unwrap_or(Value::Null);
        }
        format!("data: {c}\n\n")
    }

    /// A chunk's choice: new text, or the end (`finish_reason`).
    fn delta(&self, text: Option<&str>, token_ids: &[i64], finish: Option<&str>) -> Value {
        let mut choice = if self.chat {
            let delta = match text {
                Some(t) => json!({"content": t}),
                None => json!({}),
            };
            json!({"index": 0, "delta": delta})
        } else {
            json!({"index": 0, "text": text.unwrap_or("")})
        };
        choice["logprobs"] = Value::Null;
        choice["finish_reason"] = json!(finish);
        if !token_ids.is_empty() {
            choice["token_ids"] = json!(token_ids);
        }
        choice
    }
}

async fn whole(answer: Answer, mut rx: UnboundedReceiver<Event>) -> Response {
    let mut text = String::new();
    let mut ids = Vec::new();
    loop {
        match rx.recv().await {
            Some(Event::Text { text: t, token_ids }) => {
                text.push_str(&t);
                ids.extend(token_ids);
            }
            Some(Event::Done(o)) => {
                return json_response(200, answer.whole(text, ids, &o).to_string())
            }
            Some(Event::Failed(e)) => return error_response(&e),
            None => return error_response(&ApiError::server(500, "the engine stopped")),
        }
    }
}

/// A streamed answer: OpenAI's chunks as server-sent events, then `data: [DONE]`. Dropping
/// it (the client went away) closes the channel, which cancels the generation.
fn stream(answer: Answer, rx: UnboundedReceiver<Event>, with_usage: bool) -> Response {
    struct State {
        answer: Answer,
        rx: UnboundedReceiver<Event>,
        started: bool,
        done: bool,
    }
    let state = State {
        answer,
        rx,
        started: false,
        done: false,
    };
    let events = futures_util::stream::unfold(state, move |mut s| async move {
        if s.done {
            return None;
        }
        let a = &s.answer;
        if a.chat && !s.started {
            s.started = true;
            let role = json!({"index": 0, "delta": {"role": "assistant", "content": ""},
                              "logprobs": null, "finish_reason": null});
            let first = a.chunk(Some(role), None, with_usage);
            return Some((Ok::<_, Infallible>(Bytes::from(first)), s));
        }
        let out = match s.rx.recv().await {
            Some(Event::Text { text, token_ids }) => a.chunk(
                Some(a.delta(Some(&text), &token_ids, None)),
                None,
                with_usage,
            ),
            Some(Event::Done(o)) => {
                s.done = true;
                let last = a.chunk(
                    Some(a.delta(None, &[], Some(o.finish_reason))),
                    None,
                    with_usage,
                );
                let usage_chunk = if with_usage {
                    a.chunk(None, Some(usage(&o)), true)
                } else {
                    String::new()
                };
                format!("{last}{usage_chunk}data: [DONE]\n\n")
            }
            Some(Event::Failed(e)) => {
                s.done = true;
                format!("data: {}\n\ndata: [DONE]\n\n", e.body())
            }
            None => {
                s.done = true;
                let e = ApiError::server(500, "the engine stopped");
                format!("data: {}\n\ndata: [DONE]\n\n", e.body())
            }
        };
        Some((Ok(Bytes::from(out)), s))
    });
    Response::builder()
        .header(header::CONTENT_TYPE, "text/event-stream")
        .header(header::CACHE_CONTROL, "no-cache")
        .body(Body::from_stream(events))
        .unwrap_or_else(|e| error_response(&ApiError::server(500, e.to_string())))
}

async fn models(
    State(app): State<Arc<App>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
) -> Response {
    let start = Instant::now();
    let body = json!({"object": "list", "data": [{
        "id": app.model_name, "object": "model", "created": app.started, "owned_by": "mkc",
        "max_model_len": app.context,
    }]});
    app.record(peer, &Method::GET, "/v1/models", 200, start, "");
    json_response(200, body.to_string())
}

async fn health(
    State(app): State<Arc<App>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
) -> Response {
    let start = Instant::now();
    let m = &app.shared.metrics;
    let body = json!({
        "status": "ok",
        "queue_depth": m.queue_depth.load(Ordering::Relaxed),
        "running": m.running.load(Ordering::Relaxed),
    });
    app.record(peer, &Method::GET, "/health", 200, start, "");
    json_response(200, body.to_string())
}

async fn metrics(
    State(app): State<Arc<App>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
) -> Response {
    let start = Instant::now();
    app.record(peer, &Method::GET, "/metrics", 200, start, "");
    let text = app.shared.metrics.render();
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], text).into_response()
}

/// Unknown paths, and known ones with the wrong method.
async fn not_found(
    State(app): State<Arc<App>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    method: Method,
    uri: Uri,
) -> Response {
    let start = Instant::now();
    let path = uri.path();
    let known = [
        ("/v1/completions", "POST"),
        ("/v1/chat/completions", "POST"),
        ("/v1/models", "GET"),
        ("/health", "GET"),
        ("/metrics", "GET"),
    ];
    let e = match known.iter().find(|(p, _)| *p == path) {
        Some((_, m)) => ApiError {
            status: 405,
            ..ApiError::bad_body(format!("{path} takes {m}, not {method}"))
        },
        None => ApiError {
            status: 404,
            kind: "not_found_error",
            ..ApiError::bad_body(format!("no such endpoint: {method} {path} (this server has POST /v1/completions, POST /v1/chat/completions, GET /v1/models, GET /health, GET /metrics)"))
        },
    };
    // Unknown paths are counted together, not one series per path a scanner tries.
    let counted = if e.status == 404 { "other" } else { path };
    app.record(peer, &method, counted, e.status, start, &e.message);
    error_response(&e)
}
