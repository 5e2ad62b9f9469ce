//! `mkc serve` through real HTTP clients (reqwest, and raw sockets where a client must
//! misbehave): the same tokens as `mkc run`, OpenAI's shapes whole and streamed, many
//! clients at once, malformed requests, clients that go away, and Ctrl-C.

use super::{last_json, mkc, text};
use serde_json::{json, Value};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Barrier, Mutex};
use std::time::{Duration, Instant};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

/// A model with SmolLM2's tokenizer and chat template (../shared/fixtures), and a tiny
/// random llama of its vocabulary, run with --random-weights.
fn chat_model(tag: &str) -> Option<PathBuf> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/fixtures/smollm2-135m-q4_1");
    if !src.is_dir() {
        eprintln!("SKIPPED: no {}", src.display());
        return None;
    }
    let dir = std::env::temp_dir().join(format!("mkc-serve-{}-{tag}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    for f in [
        "tokenizer.json",
        "tokenizer_config.json",
        "chat_template.jinja",
    ] {
        std::fs::copy(src.join(f), dir.join(f)).unwrap();
    }
    let config = std::fs::read_to_string(fixture("llama-tiny").join("config.json")).unwrap();
    let mut config: Value = serde_json::from_str(&config).unwrap();
    // llama-tiny's shape, narrower (the LM head over 49152 tokens is most of a step).
    config["vocab_size"] = json!(49152);
    config["hidden_size"] = json!(64);
    config["head_dim"] = json!(16);
    config["intermediate_size"] = json!(128);
    std::fs::write(dir.join("config.json"), config.to_string()).unwrap();
    Some(dir)
}

/// A running `mkc serve`, stopped when dropped.
struct Server {
    child: Child,
    url: String,
    addr: String,
    log: Arc<Mutex<String>>,
    http: reqwest::blocking::Client,
}

impl Server {
    fn start(model: &Path, extra: &[&str]) -> Server {
        let mut child = Command::new(env!("CARGO_BIN_EXE_mkc"))
            .arg("serve")
            .arg(model)
            .args(["--port", "0", "--engine", "interp"])
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("mkc serve runs");
        let log = Arc::new(Mutex::new(String::new()));
        let stderr = child.stderr.take().unwrap();
        let sink = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let mut l = sink.lock().unwrap();
                l.push_str(&line);
                l.push('\n');
            }
        });
        let mut first = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut first)
            .unwrap();
        let Some(url) = first.trim().strip_prefix("mkc serve: listening on ") else {
            let _ = child.wait();
            std::thread::sleep(Duration::from_millis(100));
            panic!("first line {first:?}; stderr:\n{}", log.lock().unwrap());
        };
        let url = url.to_string();
        let addr = url.trim_start_matches("http://").to_string();
        let http = reqwest::blocking::Client::builder()
            .timeout(Duration::from_secs(120))
            .build()
            .unwrap();
        Server {
            child,
            url,
            addr,
            log,
            http,
        }
    }

    /// POSTs raw bytes: (status, JSON body).
    fn post_bytes(&self, path: &str, body: Vec<u8>) -> (u16, Value) {
        let r = self
            .http
            .post(format!("{}{path}", self.url))
            .header("content-type", "application/json")
            .body(body)
            .send()
            .unwrap();
        let status = r.status().as_u16();
        let body = r.text().unwrap();
        let v = serde_json::from_str(&body)
            .unwrap_or_else(|e| panic!("{status}: not JSON ({e}): {body:?}"));
        (status, v)
    }

    fn post(&self, path: &str, body: &Value) -> (u16, Value) {
        self.post_bytes(path, body.to_string().into_bytes())
    }

    /// A successful whole answer.
    fn answer(&self, path: &str, body: &Value) -> Value {
        let (status, v) = self.post(path, body);
        assert_eq!(status, 200, "{body}: {v}\n{}", self.log());
        v
    }

    /// A streamed answer: its chunks, checked to end with `data: [DONE]`.
    fn stream(&self, path: &str, body: &Value) -> Vec<Value> {
        let r = self
            .http
            .post(format!("{}{path}", self.url))
            .body(body.to_string())
            .send()
            .unwrap();
        assert_eq!(r.status().as_u16(), 200);
        let ct = r.headers()["content-type"].to_str().unwrap().to_string();
        assert_eq!(ct, "text/event-stream");
        sse_chunks(&r.text().unwrap())
    }

    fn get(&self, path: &str) -> (u16, String) {
        let r = self.http.get(format!("{}{path}", self.url)).send().unwrap();
        (r.status().as_u16(), r.text().unwrap())
    }

    /// A sample of /metrics: `name{labels}` exactly as printed (0 where absent).
    fn metric(&self, series: &str) -> f64 {
        let (_, text) = self.get("/metrics");
        text.lines()
            .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
            .map_or(0.0, |v| v.parse().unwrap())
    }

    fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    /// Ctrl-C: the server must exit by itself, successfully.
    fn interrupt(mut self) -> (ExitStatus, String) {
        let pid = self.child.id().to_string();
        let killed = Command::new("kill").args(["-INT", &pid]).status().unwrap();
        assert!(killed.success());
        let start = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                std::thread::sleep(Duration::from_millis(50));
                return (status, self.log());
            }
            assert!(
                start.elapsed() < Duration::from_secs(20),
                "no exit after Ctrl-C:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Server-sent events: each `data: {json}`, then a last `data: [DONE]`.
fn sse_chunks(body: &str) -> Vec<Value> {
    let events: Vec<&str> = body.split_terminator("\n\n").collect();
    assert_eq!(events.last(), Some(&"data: [DONE]"), "{body}");
    events[..events.len() - 1]
        .iter()
        .map(|e| {
            let data = e.strip_prefix("data: ").unwrap_or_else(|| panic!("{e:?}"));
            serde_json::from_str(data).unwrap_or_else(|err| panic!("{err}: {data}"))
        })
        .collect()
}

fn ids(v: &Value) -> Vec<i64> {
    v.as_array()
        .map(|a| a.iter().map(|t| t.as_i64().unwrap()).collect())
        .unwrap_or_default()
}

/// Checks a streamed answer's chunks against OpenAI's chunk objects and returns what they
/// add up to: (text, token ids, finish_reason, usage).
fn join_chunks(chunks: &[Value], chat: bool) -> (String, Vec<i64>, String, Option<Value>) {
    let object = if chat {
        "chat.completion.chunk"
    } else {
        "text_completion"
    };
    let id = chunks[0]["id"].as_str().unwrap();
    let (mut text, mut tokens, mut finish, mut usage) = (String::new(), Vec::new(), None, None);
    for (i, c) in chunks.iter().enumerate() {
        assert_eq!(c["object"], object, "{c}");
        assert_eq!(c["id"], id, "{c}");
        assert!(c["created"].is_u64() && c["model"].is_string(), "{c}");
        let choices = c["choices"].as_array().unwrap();
        if choices.is_empty() {
            // The usage chunk, last.
            assert_eq!(i, chunks.len() - 1, "{c}");
            usage = Some(c["usage"].clone());
            continue;
        }
        let ch = &choices[0];
        assert_eq!(ch["index"], 0, "{c}");
        assert!(finish.is_none(), "a chunk after the finish: {c}");
        if chat {
            if i == 0 {
                assert_eq!(ch["delta"]["role"], "assistant", "{c}");
            }
            text.push_str(ch["delta"]["content"].as_str().unwrap_or(""));
        } else {
            text.push_str(ch["text"].as_str().unwrap());
        }
        tokens.extend(ids(&ch["token_ids"]));
        if let Some(f) = ch["finish_reason"].as_str() {
            finish = Some(f.to_string());
        }
    }
    (text, tokens, finish.expect("a finish_reason"), usage)
}

/// `mkc run`'s generated tokens and stop reason (as OpenAI's finish_reason).
fn run_tokens(model: &Path, args: &[&str]) -> (Vec<i64>, &'static str, Value) {
    let mut all = vec!["run", model.to_str().unwrap(), "--engine", "interp"];
    all.extend_from_slice(args);
    let o = mkc(&all, None);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let j = last_json(&o);
    let finish = if j["stop_reason"] == "max_new_tokens" {
        "length"
    } else {
        "stop"
    };
    (ids(&j["generated"]), finish, j)
}

#[test]
fn serve_answers_as_mkc_run_does_whole_and_streamed() {
    let model = fixture("llama-tiny");
    let server = Server::start(&model, &["--ctx", "64"]);
    for (temperature, seed) in [(0.0, 0), (0.9, 11)] {
        let (want, finish, _) = run_tokens(
            &model,
            &[
                "--prompt-ids",
                "5,6,7,8",
                "--max-new-tokens",
                "6",
                "--ctx",
                "64",
                "--temperature",
                &temperature.to_string(),
                "--seed",
                &seed.to_string(),
            ],
        );
        let req = json!({"model": "llama-tiny", "prompt": [5, 6, 7, 8], "max_tokens": 6,
                         "temperature": temperature, "seed": seed});
        let v = server.answer("/v1/completions", &req);
        assert_eq!(v["object"], "text_completion", "{v}");
        assert!(v["id"].as_str().unwrap().starts_with("cmpl-"), "{v}");
        assert_eq!(v["model"], "llama-tiny");
        let choice = &v["choices"][0];
        assert_eq!(ids(&choice["token_ids"]), want, "{v}");
        assert_eq!(choice["finish_reason"], finish, "{v}");
        assert_eq!(choice["text"], "", "no tokenizer, no text: {v}");
        let usage = &v["usage"];
        assert_eq!(usage["prompt_tokens"], 4);
        assert_eq!(usage["completion_tokens"], want.len());
        assert_eq!(usage["total_tokens"], 4 + want.len());
        // Streamed: the chunks add up to the same answer.
        let mut req = req.clone();
        req["stream"] = json!(true);
        req["stream_options"] = json!({"include_usage": true});
        let chunks = server.stream("/v1/completions", &req);
        let (_, tokens, f, streamed_usage) = join_chunks(&chunks, false);
        assert_eq!(tokens, want);
        assert_eq!(f, finish);
        assert_eq!(streamed_usage.unwrap()["completion_tokens"], want.len());
    }
    // A prompt that continues the last request's tokens reuses the cache, and answers as a
    // fresh run of the whole prompt does.
    let (first, _, _) = run_tokens(
        &model,
        &[
            "--prompt-ids",
            "5,6,7,8",
            "--max-new-tokens",
            "3",
            "--ctx",
            "64",
        ],
    );
    let v = server.answer(
        "/v1/completions",
        &json!({"prompt": [5, 6, 7, 8], "max_tokens": 3}),
    );
    assert_eq!(ids(&v["choices"][0]["token_ids"]), first);
    let mut longer = vec![5, 6, 7, 8];
    longer.extend(&first);
    longer.push(9);
    let csv: Vec<String> = longer.iter().map(i64::to_string).collect();
    let (want, _, _) = run_tokens(
        &model,
        &[
            "--prompt-ids",
            &csv.join(","),
            "--max-new-tokens",
            "3",
            "--ctx",
            "64",
        ],
    );
    let v = server.answer(
        "/v1/completions",
        &json!({"prompt": longer, "max_tokens": 3}),
    );
    assert_eq!(ids(&v["choices"][0]["token_ids"]), want, "{v}");
    assert_eq!(
        v["usage"]["prompt_tokens_details"]["cached_tokens"], 7,
        "{v}"
    );
    // The other endpoints.
    let (status, models) = server.get("/v1/models");
    assert_eq!(status, 200);
    let models: Value = serde_json::from_str(&models).unwrap();
    assert_eq!(models["data"][0]["id"], "llama-tiny", "{models}");
    assert_eq!(models["data"][0]["max_model_len"], 64, "{models}");
    let (status, health) = server.get("/health");
    assert_eq!(
        (
            status,
            serde_json::from_str::<Value>(&health).unwrap()["status"].clone()
        ),
        (200, json!("ok"))
    );
    assert_eq!(
        server.metric("mkc_requests_total{endpoint=\"/v1/completions\",status=\"200\"}"),
        6.0
    );
    assert!(server.metric("mkc_prompt_tokens_cached_total") >= 7.0);
    assert_eq!(server.metric("mkc_time_to_first_token_seconds_count"), 6.0);
    assert_eq!(server.metric("mkc_queue_depth"), 0.0);
    let log = server.log();
    assert!(log.contains("POST /v1/completions 200"), "{log}");
    let (status, log) = server.interrupt();
    assert!(status.success(), "{status:?}\n{log}");
    assert!(log.contains("mkc serve: shut down"), "{log}");
}

#[test]
fn serve_chats_with_the_models_template() {
    let Some(model) = chat_model("chat") else {
        return;
    };
    let server = Server::start(
        &model,
        &["--random-weights", "--ctx", "96", "--model-name", "smol"],
    );
    // A text prompt: the same text and tokens as `mkc run --prompt`.
    let (want, finish, run) = run_tokens(
        &model,
        &[
            "--random-weights",
            "--prompt",
            "The capital of France is",
            "--max-new-tokens",
            "4",
            "--ctx",
            "96",
        ],
    );
    let v = server.answer(
        "/v1/completions",
        &json!({"model": "smol", "prompt": "The capital of France is", "max_tokens": 4}),
    );
    assert_eq!(ids(&v["choices"][0]["token_ids"]), want, "{v}");
    assert_eq!(v["choices"][0]["text"], run["text"], "{v}");
    assert_eq!(v["choices"][0]["finish_reason"], finish);
    // A chat: the template's prompt, and its streamed form adds up to the whole one.
    let messages =
        json!([{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}]);
    let req = json!({"model": "smol", "messages": messages, "max_tokens": 4, "temperature": 0.8, "seed": 3});
    let v = server.answer("/v1/chat/completions", &req);
    assert_eq!(v["object"], "chat.completion", "{v}");
    assert!(v["id"].as_str().unwrap().starts_with("chatcmpl-"), "{v}");
    let choice = &v["choices"][0];
    assert_eq!(choice["message"]["role"], "assistant");
    let answer = choice["message"]["content"].as_str().unwrap().to_string();
    let tokens = ids(&choice["token_ids"]);
    assert_eq!(tokens.len(), 4);
    // Greedy, a chat answers as `mkc run` does on the prompt SmolLM2's template renders
    // (its tokenizer adds no special tokens of its own).
    let rendered = "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n";
    let (want, finish, run) = run_tokens(
        &model,
        &[
            "--random-weights",
            "--prompt",
            rendered,
            "--max-new-tokens",
            "4",
            "--ctx",
            "96",
        ],
    );
    let greedy = server.answer(
        "/v1/chat/completions",
        &json!({"messages": messages, "max_tokens": 4}),
    );
    assert_eq!(ids(&greedy["choices"][0]["token_ids"]), want, "{greedy}");
    assert_eq!(greedy["choices"][0]["message"]["content"], run["text"]);
    assert_eq!(greedy["choices"][0]["finish_reason"], finish);
    assert_eq!(greedy["usage"]["prompt_tokens"], run["prompt"]);
    let prompt_tokens = run["prompt"].as_u64().unwrap();
    let mut streamed = req.clone();
    streamed["stream"] = json!(true);
    let chunks = server.stream("/v1/chat/completions", &streamed);
    let (text, stream_tokens, f, usage) = join_chunks(&chunks, true);
    assert_eq!(
        (text.as_str(), stream_tokens, f.as_str(), usage),
        (answer.as_str(), tokens.clone(), "length", None)
    );
    // A stop string inside the answer ends it there.
    let cut = answer
        .char_indices()
        .map(|(i, _)| i)
        .find(|&i| i >= 2)
        .unwrap();
    let stop: String = answer[cut..].chars().take(2).collect();
    let mut stopped = req.clone();
    stopped["stop"] = json!([stop]);
    let v = server.answer("/v1/chat/completions", &stopped);
    let choice = &v["choices"][0];
    assert_eq!(
        choice["message"]["content"],
        answer[..answer.find(&stop).unwrap()],
        "{v} (stop {stop:?})"
    );
    assert_eq!(choice["finish_reason"], "stop");
    // The next turn of the conversation reuses the cache for the turns before.
    let turn = json!([{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"},
                      {"role": "assistant", "content": answer}, {"role": "user", "content": "And?"}]);
    let v = server.answer(
        "/v1/chat/completions",
        &json!({"messages": turn, "max_tokens": 2}),
    );
    let cached = v["usage"]["prompt_tokens_details"]["cached_tokens"]
        .as_u64()
        .unwrap();
    assert!(cached >= prompt_tokens, "{v}");
}

/// Client i's request: its own prompt and seed; every other one streamed.
fn client_request(i: u64) -> Value {
    json!({"prompt": [10 + i, 40 + i, 70 + i], "max_tokens": 4, "temperature": 1.0,
           "seed": i, "stream": i.is_multiple_of(2)})
}

fn client_answer(server: &Server, i: u64) -> Vec<i64> {
    let req = client_request(i);
    if i.is_multiple_of(2) {
        let (_, tokens, _, _) = join_chunks(&server.stream("/v1/completions", &req), false);
        tokens
    } else {
        ids(&server.answer("/v1/completions", &req)["choices"][0]["token_ids"])
    }
}

#[test]
fn thirty_two_concurrent_clients_get_their_own_answers() {
    let server = Arc::new(Server::start(&fixture("llama-tiny"), &["--ctx", "32"]));
    let sequential: Vec<Vec<i64>> = (0..32).map(|i| client_answer(&server, i)).collect();
    assert!(sequential.iter().all(|a| a.len() == 4), "{sequential:?}");
    // Different prompts and seeds give different answers, so a mix-up would show.
    let distinct: std::collections::BTreeSet<_> = sequential.iter().collect();
    assert!(distinct.len() > 16, "{sequential:?}");
    let barrier = Arc::new(Barrier::new(32));
    let threads: Vec<_> = (0..32)
        .map(|i| {
            let (server, barrier) = (server.clone(), barrier.clone());
            std::thread::spawn(move || {
                barrier.wait();
                client_answer(&server, i)
            })
        })
        .collect();
    for (i, t) in threads.into_iter().enumerate() {
        assert_eq!(t.join().unwrap(), sequential[i], "client {i}");
    }
    assert_eq!(
        server.metric("mkc_requests_total{endpoint=\"/v1/completions\",status=\"200\"}"),
        64.0
    );
}

/// At least 200 requests no server should accept, each of a kind a client gets wrong.
fn malformed_requests() -> Vec<(&'static str, Vec<u8>)> {
    let mut out: Vec<(&'static str, Vec<u8>)> = Vec::new();
    let chat = r#"{"model":"smol","messages":[{"role":"user","content":"Hi"}],"max_tokens":2,"stop":["x"]}"#;
    let completion = r#"{"model":"smol","prompt":[1,2,3],"max_tokens":2,"temperature":0.5}"#;
    // Truncated JSON: every proper prefix.
    for body in [chat, completion] {
        let path = if body == chat {
            "/v1/chat/completions"
        } else {
            "/v1/completions"
        };
        for n in 0..body.len() {
            out.push((path, body.as_bytes()[..n].to_vec()));
        }
    }
    // Each field with values of the wrong type or out of range (huge numbers too).
    let bad: &[(&str, &[&str])] = &[
        ("model", &["1", "true", "[]", "{}", "\"gpt-4\""]),
        (
            "max_tokens",
            &[
                "\"2\"",
                "-1",
                "0",
                "1.5",
                "true",
                "[]",
                "1e400",
                "99999999999999999999999",
                "1e18",
                "1000000",
            ],
        ),
        (
            "temperature",
            &["\"hot\"", "-0.5", "3", "1e308", "[]", "{}"],
        ),
        ("top_p", &["0", "1.5", "\"x\"", "-1", "true"]),
        (
            "seed",
            &[
                "1.5",
                "\"s\"",
                "1e30",
                "-1e30",
                "[]",
                "18446744073709551616",
            ],
        ),
        ("stop", &["1", "[1]", "{}", "[\"a\", null]", "true"]),
        ("stream", &["\"yes\"", "1", "[]"]),
        ("n", &["2", "\"1\"", "0", "1e100"]),
        (
            "stream_options",
            &["1", "{\"include_usage\": \"yes\"}", "{\"bogus\": true}"],
        ),
        ("logprobs", &["\"yes\"", "5", "true"]),
        ("presence_penalty", &["\"x\"", "1", "5"]),
        ("frequency_penalty", &["[]", "0.5"]),
        ("user", &["1", "[]"]),
        ("logit_bias", &["1", "{\"5\": 1}"]),
        ("frobnicate", &["1", "\"x\"", "{}"]),
        ("tools", &["1", "[{\"type\": \"function\"}]"]),
        ("response_format", &["{\"type\": \"json_object\"}", "1"]),
    ];
    for (field, values) in bad {
        for v in values.iter() {
            for (path, base) in [
                ("/v1/chat/completions", chat),
                ("/v1/completions", completion),
            ] {
                let mut body: Value = serde_json::from_str(base).unwrap();
                let text = match serde_json::from_str::<Value>(v) {
                    Ok(value) => {
                        body[*field] = value;
                        body.to_string()
                    }
                    // Values serde_json cannot hold (1e400) are spliced in as text.
                    Err(_) => {
                        body.as_object_mut().unwrap().remove(*field);
                        body.to_string()
                            .replacen('{', &format!("{{\"{field}\":{v},"), 1)
                    }
                };
                out.push((path, text.into_bytes()));
            }
        }
    }
    // Chat messages of every wrong shape.
    for m in [
        "[]",
        "null",
        "\"Hi\"",
        "{}",
        "[1]",
        "[[]]",
        "[{}]",
        "[{\"role\":\"user\"}]",
        "[{\"content\":\"Hi\"}]",
        "[{\"role\":1,\"content\":\"Hi\"}]",
        "[{\"role\":\"\",\"content\":\"Hi\"}]",
        "[{\"role\":\"user\",\"content\":1}]",
        "[{\"role\":\"user\",\"content\":[{\"type\":\"image_url\"}]}]",
        "[{\"role\":\"user\",\"content\":[{\"type\":\"text\"}]}]",
        "[{\"role\":\"user\",\"content\":\"Hi\",\"name\":5}]",
        "[{\"role\":\"user\",\"content\":\"Hi\",\"tool_calls\":[1]}]",
    ] {
        out.push((
            "/v1/chat/completions",
            format!("{{\"messages\":{m},\"max_tokens\":2}}").into_bytes(),
        ));
    }
    // Prompts of every wrong shape, and ones beyond the vocabulary or the context.
    for p in [
        "\"\"",
        "[]",
        "null",
        "1",
        "{}",
        "[1,\"a\"]",
        "[[1],[2]]",
        "[\"a\",\"b\"]",
        "[1.5]",
        "[-1]",
        "[49152]",
        "[1e30]",
        "[true]",
        "[99999999999999999999]",
    ] {
        out.push((
            "/v1/completions",
            format!("{{\"prompt\":{p},\"max_tokens\":2}}").into_bytes(),
        ));
    }
    let long = vec!["1"; 95].join(",");
    out.push((
        "/v1/completions",
        format!("{{\"prompt\":[{long}],\"max_tokens\":2}}").into_bytes(),
    ));
    out.push(("/v1/completions", br#"{"max_tokens":2}"#.to_vec()));
    out.push(("/v1/chat/completions", br#"{"max_tokens":2}"#.to_vec()));
    // Not JSON objects, and not UTF-8.
    for body in [
        "",
        " ",
        "null",
        "[]",
        "1",
        "\"x\"",
        "{\"prompt\":\"a\"}}",
        "{'prompt': 'a'}",
        "{\"prompt\":\"a\",}",
    ] {
        out.push(("/v1/completions", body.as_bytes().to_vec()));
        out.push(("/v1/chat/completions", body.as_bytes().to_vec()));
    }
    for bytes in [
        &b"\xff"[..],
        b"\xc3\x28",
        b"\xe2\x82",
        b"\xf0\x9f\x98",
        b"\xed\xa0\x80",
        b"\xc0\xaf",
    ] {
        let mut chat_body = br#"{"messages":[{"role":"user","content":"Hi "#.to_vec();
        chat_body.extend_from_slice(bytes);
        chat_body.extend_from_slice(br#""}],"max_tokens":2}"#);
        out.push(("/v1/chat/completions", chat_body));
        let mut prompt = br#"{"prompt":"Hi "#.to_vec();
        prompt.extend_from_slice(bytes);
        prompt.extend_from_slice(br#"","max_tokens":2}"#);
        out.push(("/v1/completions", prompt));
    }
    out
}

#[test]
fn malformed_requests_get_json_errors_and_the_server_keeps_answering() {
    let Some(model) = chat_model("malformed") else {
        return;
    };
    let server = Server::start(
        &model,
        &["--random-weights", "--ctx", "96", "--model-name", "smol"],
    );
    let requests = malformed_requests();
    assert!(requests.len() >= 200, "{}", requests.len());
    for (path, body) in &requests {
        let shown = String::from_utf8_lossy(body);
        let (status, v) = server.post_bytes(path, body.clone());
        assert!((400..500).contains(&status), "{path} {shown}: {status} {v}");
        let e = &v["error"];
        assert!(
            e["message"].as_str().is_some_and(|m| !m.is_empty()),
            "{shown}: {v}"
        );
        assert!(e["type"].is_string(), "{shown}: {v}");
        assert!(
            e.get("param").is_some() && e.get("code").is_some(),
            "{shown}: {v}"
        );
    }
    // Unknown model names are 404 model_not_found; unknown routes and methods JSON too.
    let (status, v) = server.post("/v1/completions", &json!({"model": "gpt-4", "prompt": [1]}));
    assert_eq!(
        (status, v["error"]["code"].clone()),
        (404, json!("model_not_found")),
        "{v}"
    );
    for (method, path, want) in [
        ("GET", "/v1/completions", 405),
        ("POST", "/v1/models", 405),
        ("GET", "/nope", 404),
    ] {
        let r = server
            .http
            .request(method.parse().unwrap(), format!("{}{path}", server.url))
            .send()
            .unwrap();
        assert_eq!(r.status().as_u16(), want, "{method} {path}");
        let v: Value = serde_json::from_str(&r.text().unwrap()).unwrap();
        assert!(v["error"]["message"].is_string(), "{v}");
    }
    // A body over the limit (4 MiB).
    let huge = format!("{{\"prompt\":\"{}\"}}", "a".repeat(5 << 20));
    let (status, v) = server.post_bytes("/v1/completions", huge.into_bytes());
    assert_eq!(status, 413, "{v}");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("over 4194304 bytes"),
        "{v}"
    );
    // Still answering.
    let v = server.answer(
        "/v1/chat/completions",
        &json!({"messages": [{"role": "user", "content": "Hi"}], "max_tokens": 1}),
    );
    assert_eq!(
        v["choices"][0]["token_ids"].as_array().unwrap().len(),
        1,
        "{v}"
    );
    let rejected: f64 = ["400", "404", "413"]
        .iter()
        .map(|s| {
            server.metric(&format!(
                "mkc_requests_total{{endpoint=\"/v1/completions\",status=\"{s}\"}}"
            )) + server.metric(&format!(
                "mkc_requests_total{{endpoint=\"/v1/chat/completions\",status=\"{s}\"}}"
            ))
        })
        .sum();
    assert_eq!(rejected as usize, requests.len() + 2);
    assert!(!server.log().contains("panicked"), "{}", server.log());
}

/// Asks for 2000 tokens (streamed or not) on a raw socket.
fn post_raw(server: &Server, stream: bool) -> TcpStream {
    let body =
        json!({"prompt": [1, 2, 3], "max_tokens": 2000, "stream": stream, "temperature": 1.0})
            .to_string();
    let mut socket = TcpStream::connect(&server.addr).unwrap();
    write!(
        socket,
        "POST /v1/completions HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        server.addr,
        body.len()
    )
    .unwrap();
    socket
}

/// Asks for a 2000-token stream on a raw socket and reads until its first tokens: (the
/// socket, what was read).
fn start_long_stream(server: &Server) -> (TcpStream, String) {
    let mut socket = post_raw(server, true);
    socket
        .set_read_timeout(Some(Duration::from_secs(60)))
        .unwrap();
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    while !String::from_utf8_lossy(&seen).contains("token_ids") {
        let n = socket.read(&mut buf).unwrap();
        assert!(n > 0, "closed early: {}", String::from_utf8_lossy(&seen));
        seen.extend_from_slice(&buf[..n]);
    }
    (socket, String::from_utf8_lossy(&seen).into_owned())
}

#[test]
fn a_client_that_disconnects_mid_stream_frees_the_engine() {
    let server = Server::start(&fixture("llama-tiny"), &["--ctx", "2048"]);
    // A raw client that asks for a long stream, reads its first chunk, and hangs up.
    let (socket, seen) = start_long_stream(&server);
    assert!(seen.starts_with("HTTP/1.1 200"), "{seen}");
    drop(socket);
    // The next request is served once the engine notices, at its next token or so.
    let start = Instant::now();
    let v = server.answer(
        "/v1/completions",
        &json!({"prompt": [4, 5], "max_tokens": 2}),
    );
    let took = start.elapsed();
    assert_eq!(v["choices"][0]["token_ids"].as_array().unwrap().len(), 2);
    let cancelled =
        server.metric("mkc_requests_total{endpoint=\"/v1/completions\",status=\"499\"}");
    assert_eq!(cancelled, 1.0, "{}", server.log());
    assert_eq!(server.metric("mkc_requests_cancelled_total"), 1.0);
    // Far fewer than the 2000 tokens asked for were generated.
    let generated = server.metric("mkc_generated_tokens_total");
    assert!(
        generated < 1000.0,
        "{generated} tokens generated:\n{}",
        server.log()
    );
    assert!(took < Duration::from_secs(30), "{took:?}");
    assert!(
        server.log().contains("client went away"),
        "{}",
        server.log()
    );
    // A client waiting for a whole answer that hangs up once it runs cancels it too.
    let socket = post_raw(&server, false);
    let start = Instant::now();
    while server.metric("mkc_requests_running") < 1.0 {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "{}",
            server.log()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    drop(socket);
    let v = server.answer(
        "/v1/completions",
        &json!({"prompt": [4, 5], "max_tokens": 2}),
    );
    assert_eq!(v["choices"][0]["token_ids"].as_array().unwrap().len(), 2);
    assert_eq!(
        server.metric("mkc_requests_cancelled_total"),
        2.0,
        "{}",
        server.log()
    );
    assert!(server.metric("mkc_generated_tokens_total") < 2000.0);
}

#[test]
fn ctrl_c_ends_the_running_generation_and_exits() {
    let server = Server::start(&fixture("llama-tiny"), &["--ctx", "2048"]);
    let (mut socket, mut seen) = start_long_stream(&server);
    let (status, log) = server.interrupt();
    assert!(status.success(), "{status:?}\n{log}");
    assert!(log.contains("mkc serve: shut down"), "{log}");
    // The stream ends with an error event saying why, then [DONE].
    let mut rest = String::new();
    let _ = socket.read_to_string(&mut rest);
    seen.push_str(&rest);
    assert!(seen.contains("the server is shutting down"), "{seen}");
    assert!(
        seen.trim_end()
            .trim_end_matches("0")
            .trim_end()
            .ends_with("data: [DONE]"),
        "{seen}"
    );
    assert!(log.contains("POST /v1/completions 503"), "{log}");
}
