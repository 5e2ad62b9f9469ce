//! The OpenAI request bodies: parsed from JSON into typed requests, every field checked
//! (type, range, what is supported) with an OpenAI-style error naming it.

use mkc_driver::sample::SamplingOptions;
use serde_json::{json, Map, Value};

/// An error answered as OpenAI does: `{"error": {"message", "type", "param", "code"}}`.
#[derive(Clone, Debug, PartialEq)]
pub struct ApiError {
    pub status: u16,
    pub message: String,
    /// OpenAI's `type`: "invalid_request_error", "not_found_error", "server_error", ...
    pub kind: &'static str,
    pub param: Option<String>,
    pub code: Option<&'static str>,
}

impl ApiError {
    /// A 400 about one field of the request.
    pub fn invalid(param: &str, message: impl Into<String>) -> ApiError {
        ApiError {
            status: 400,
            message: message.into(),
            kind: "invalid_request_error",
            param: (!param.is_empty()).then(|| param.to_string()),
            code: None,
        }
    }

    /// A 400 about the body as a whole.
    pub fn bad_body(message: impl Into<String>) -> ApiError {
        ApiError::invalid("", message)
    }

    pub fn with_code(mut self, code: &'static str) -> ApiError {
        self.code = Some(code);
        self
    }

    /// A failure of the server or the engine, not of the request.
    pub fn server(status: u16, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            message: message.into(),
            kind: "server_error",
            param: None,
            code: None,
        }
    }

    pub fn body(&self) -> String {
        json!({"error": {
            "message": self.message,
            "type": self.kind,
            "param": self.param,
            "code": self.code,
        }})
        .to_string()
    }
}

pub use mkc_driver::chat::Message;

/// A completion's prompt, as OpenAI allows it (a batch of one).
#[derive(Clone, Debug, PartialEq)]
pub enum Prompt {
    Text(String),
    Tokens(Vec<i64>),
}

/// What both endpoints take besides their prompt.
#[derive(Clone, Debug, PartialEq)]
pub struct Options {
    pub model: Option<String>,
    pub max_tokens: Option<usize>,
    pub sampling: SamplingOptions,
    pub stop: Vec<String>,
    pub stream: bool,
    /// `stream_options.include_usage`: a last chunk with the usage.
    pub include_usage: bool,
}

#[derive(Clone, Debug, PartialEq)]
pub struct CompletionRequest {
    pub prompt: Prompt,
    pub options: Options,
}

#[derive(Clone, Debug, PartialEq)]
pub struct ChatRequest {
    pub messages: Vec<Message>,
    pub options: Options,
}

/// The body as a JSON object: UTF-8, JSON, an object.
pub fn parse_body(bytes: &[u8]) -> Result<Map<String, Value>, ApiError> {
    if bytes.is_empty() {
        return Err(ApiError::bad_body(
            "the request body is empty: send a JSON object",
        ));
    }
    let text = std::str::from_utf8(bytes).map_err(|e| {
        ApiError::bad_body(format!(
            "the request body is not UTF-8 (invalid byte at offset {})",
            e.valid_up_to()
        ))
    })?;
    match serde_json::from_str::<Value>(text) {
        Ok(Value::Object(m)) => Ok(m),
        Ok(other) => Err(ApiError::bad_body(format!(
            "the request body must be a JSON object, not {}",
            type_name(&other)
        ))),
        Err(e) => Err(ApiError::bad_body(format!(
            "the request body is not valid JSON: {e}"
        ))),
    }
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn wrong(param: &str, want: &str, v: &Value) -> ApiError {
    ApiError::invalid(
        param,
        format!("'{param}' must be {want}, not {}", type_name(v)),
    )
}

/// An integer field in `lo..=hi` (a number with a fraction or out of range is refused).
fn int(param: &str, v: &Value, lo: i128, hi: i128) -> Result<i128, ApiError> {
    let n = v
        .as_i64()
        .map(i128::from)
        .or_else(|| v.as_u64().map(i128::from));
    match n {
        Some(n) if (lo..=hi).contains(&n) => Ok(n),
        Some(n) => Err(ApiError::invalid(
            param,
            format!("'{param}' must be from {lo} to {hi}, not {n}"),
        )),
        None if v.is_number() => Err(ApiError::invalid(
            param,
            format!("'{param}' must be an integer from {lo} to {hi}, not {v}"),
        )),
        None => Err(wrong(param, "an integer", v)),
    }
}

/// A number field in `lo..=hi` (`open_lo`: above `lo`).
fn number(param: &str, v: &Value, lo: f64, open_lo: bool, hi: f64) -> Result<f64, ApiError> {
    let x = v.as_f64().ok_or_else(|| wrong(param, "a number", v))?;
    let above = if open_lo { x > lo } else { x >= lo };
    if !(above && x <= hi) {
        let open = if open_lo { "(" } else { "[" };
        return Err(ApiError::invalid(
            param,
            format!("'{param}' must be in {open}{lo}, {hi}], not {x}"),
        ));
    }
    Ok(x)
}

fn boolean(param: &str, v: &Value) -> Result<bool, ApiError> {
    v.as_bool().ok_or_else(|| wrong(param, "a boolean", v))
}

/// Refuses a value other than what mkc does (one choice, no log-probabilities, ...).
fn only(param: &str, v: &Value, ok: bool, what: &str) -> Result<(), ApiError> {
    if ok {
        return Ok(());
    }
    Err(ApiError::invalid(
        param,
        format!("'{param}' is not supported by this server except as {what} (got {v})"),
    ))
}

/// Fields of OpenAI's API that mkc accepts but does not act on (their type is still
/// checked), or supports only at one value.
fn ignored_field(key: &str, v: &Value) -> Option<Result<(), ApiError>> {
    let r = match key {
        "user" | "service_tier" => v
            .is_string()
            .then_some(())
            .ok_or_else(|| wrong(key, "a string", v)),
        "metadata" => v
            .is_object()
            .then_some(())
            .ok_or_else(|| wrong(key, "an object", v)),
        "store" | "parallel_tool_calls" => boolean(key, v).map(drop),
        "n" | "best_of" => int(key, v, 1, i64::MAX.into())
            .and_then(|n| only(key, v, n == 1, "1 (one sequence at a time)")),
        "presence_penalty" | "frequency_penalty" => {
            number(key, v, -2.0, false, 2.0).and_then(|x| only(key, v, x == 0.0, "0"))
        }
        "logit_bias" => match v {
            Value::Object(m) => only(key, v, m.is_empty(), "{}"),
            _ => Err(wrong(key, "an object", v)),
        },
        "echo" => boolean(key, v).and_then(|b| only(key, v, !b, "false")),
        "logprobs" => match v {
            Value::Bool(b) => only(key, v, !b, "false"),
            Value::Number(_) => int(key, v, 0, 20).and_then(|n| only(key, v, n == 0, "0")),
            _ => Err(wrong(key, "a boolean or an integer", v)),
        },
        "top_logprobs" => int(key, v, 0, 20).and_then(|n| only(key, v, n == 0, "0")),
        "suffix" => match v {
            Value::String(s) => only(key, v, s.is_empty(), "an empty string"),
            _ => Err(wrong(key, "a string", v)),
        },
        "tools" => match v {
            Value::Array(a) => only(key, v, a.is_empty(), "[]"),
            _ => Err(wrong(key, "an array", v)),
        },
        "tool_choice" => only(key, v, v == "none" || v == "auto", "\"none\""),
        "response_format" => only(
            key,
            v,
            v == &json!({"type": "text"}),
            "{\"type\": \"text\"}",
        ),
        _ => return None,
    };
    Some(r)
}

/// The fields both endpoints share; `Ok(false)` for a key that is not one of them.
fn common_field(o: &mut Options, key: &str, v: &Value) -> Result<bool, ApiError> {
    match key {
        "model" => {
            o.model = Some(
                v.as_str()
                    .ok_or_else(|| wrong(key, "a string", v))?
                    .to_string(),
            )
        }
        "max_tokens" | "max_completion_tokens" => {
            o.max_tokens = Some(int(key, v, 1, u32::MAX.into())? as usize)
        }
        "temperature" => o.sampling.temperature = number(key, v, 0.0, false, 2.0)?,
        "top_p" => o.sampling.top_p = number(key, v, 0.0, true, 1.0)?,
        // vLLM's extension: -1 (or 0) keeps every token.
        "top_k" => o.sampling.top_k = int(key, v, -1, u32::MAX.into())?.max(0) as usize,
        // OpenAI's seed is a 64-bit integer; a negative one is its two's complement.
        "seed" => o.sampling.seed = int(key, v, i64::MIN.into(), u64::MAX.into())? as u64,
        "stop" => o.stop = stops(v)?,
        "stream" => o.stream = boolean(key, v)?,
        "stream_options" => {
            let m = v.as_object().ok_or_else(|| wrong(key, "an object", v))?;
            for (k, x) in m {
                match k.as_str() {
                    "include_usage" => {
                        o.include_usage = boolean("stream_options.include_usage", x)?
                    }
                    "continuous_usage_stats" => {
                        boolean("stream_options.continuous_usage_stats", x)?;
                    }
                    _ => {
                        return Err(ApiError::invalid(
                            "stream_options",
                            format!("unrecognized stream option '{k}'"),
                        ))
                    }
                }
            }
        }
        _ => match ignored_field(key, v) {
            Some(r) => r?,
            None => return Ok(false),
        },
    }
    Ok(true)
}

fn stops(v: &Value) -> Result<Vec<String>, ApiError> {
    match v {
        Value::String(s) => Ok(vec![s.clone()]),
        Value::Array(a) => a
            .iter()
            .map(|s| {
                s.as_str()
                    .map(str::to_string)
                    .ok_or_else(|| wrong("stop", "a string or an array of strings", s))
            })
            .collect(),
        _ => Err(wrong("stop", "a string or an array of strings", v)),
    }
}

fn unknown(key: &str) -> ApiError {
    ApiError::invalid(
        key,
        format!("Unrecognized request argument supplied: {key}"),
    )
}

/// Walks the object's fields: `own` takes the endpoint's own (`Ok(false)`: not one), the
/// rest are the shared ones or refused. A null is as if the field were absent.
fn fields(
    body: &Map<String, Value>,
    mut own: impl FnMut(&str, &Value) -> Result<bool, ApiError>,
) -> Result<Options, ApiError> {
    let mut o = Options {
        model: None,
        max_tokens: None,
        sampling: SamplingOptions::default(),
        stop: Vec::new(),
        stream: false,
        include_usage: false,
    };
    for (key, v) in body {
        if v.is_null() || own(key, v)? || common_field(&mut o, key, v)? {
            continue;
        }
        return Err(unknown(key));
    }
    Ok(o)
}

pub fn parse_completion(body: &Map<String, Value>) -> Result<CompletionRequest, ApiError> {
    let mut prompt = None;
    let options = fields(body, |key, v| {
        if key != "prompt" {
            return Ok(false);
        }
        prompt = Some(parse_prompt(v)?);
        Ok(true)
    })?;
    let prompt = prompt.ok_or_else(|| ApiError::invalid("prompt", "'prompt' is required"))?;
    Ok(CompletionRequest { prompt, options })
}

fn parse_prompt(v: &Value) -> Result<Prompt, ApiError> {
    let want = "a string, an array of token ids, or an array of one string";
    match v {
        Value::String(s) if s.is_empty() => {
            Err(ApiError::invalid("prompt", "'prompt' is empty"))
        }
        Value::String(s) => Ok(Prompt::Text(s.clone())),
        Value::Array(a) if a.is_empty() => {
            Err(ApiError::invalid("prompt", "'prompt' is empty"))
        }
        Value::Array(a) if a.len() == 1 && a[0].is_string() => parse_prompt(&a[0]),
        Value::Array(a) if a.iter().all(Value::is_number) => a
            .iter()
            .map(|t| int("prompt", t, 0, i64::MAX.into()).map(|t| t as i64))
            .collect::<Result<_, _>>()
            .map(Prompt::Tokens),
        Value::Array(a) if a.iter().all(|x| x.is_string() || x.is_array()) => {
            Err(ApiError::invalid(
                "prompt",
                "a batch of prompts is not supported: this server runs one sequence at a time (send one request per prompt)",
            ))
        }
        _ => Err(wrong("prompt", want, v)),
    }
}

pub fn parse_chat(body: &Map<String, Value>) -> Result<ChatRequest, ApiError> {
    let mut messages = None;
    let options = fields(body, |key, v| {
        if key != "messages" {
            return Ok(false);
        }
        messages = Some(parse_messages(v)?);
        Ok(true)
    })?;
    let messages =
        messages.ok_or_else(|| ApiError::invalid("messages", "'messages' is required"))?;
    Ok(ChatRequest { messages, options })
}

fn parse_messages(v: &Value) -> Result<Vec<Message>, ApiError> {
    let list = v
        .as_array()
        .ok_or_else(|| wrong("messages", "an array of messages", v))?;
    if list.is_empty() {
        return Err(ApiError::invalid(
            "messages",
            "'messages' is empty: give at least one message",
        ));
    }
    list.iter()
        .enumerate()
        .map(|(i, m)| parse_message(i, m))
        .collect()
}

fn parse_message(i: usize, m: &Value) -> Result<Message, ApiError> {
    let at = |f: &str| format!("messages[{i}]{f}");
    let m = m
        .as_object()
        .ok_or_else(|| wrong(&at(""), "an object", m))?;
    let mut role = None;
    let mut content = None;
    for (key, v) in m {
        match key.as_str() {
            "role" => match v.as_str() {
                Some(r) if !r.is_empty() => role = Some(r.to_string()),
                _ => return Err(wrong(&at(".role"), "a non-empty string", v)),
            },
            "content" => content = Some(message_content(&at(".content"), v)?),
            "name" => {
                v.as_str()
                    .ok_or_else(|| wrong(&at(".name"), "a string", v))?;
            }
            _ if v.is_null() => {}
            _ => {
                return Err(ApiError::invalid(
                    &at(""),
                    format!(
                        "{}: '{key}' is not supported (messages take role, content and name)",
                        at("")
                    ),
                ))
            }
        }
    }
    let role = role
        .ok_or_else(|| ApiError::invalid(&at(".role"), format!("{} is required", at(".role"))))?;
    let content = content.ok_or_else(|| {
        ApiError::invalid(&at(".content"), format!("{} is required", at(".content")))
    })?;
    Ok(Message { role, content })
}

/// A message's text: a string, or an array of text parts (joined).
fn message_content(param: &str, v: &Value) -> Result<String, ApiError> {
    match v {
        Value::String(s) => Ok(s.clone()),
        Value::Array(parts) => {
            let mut text = String::new();
            for (j, p) in parts.iter().enumerate() {
                let kind = p.get("type").and_then(Value::as_str);
                match (kind, p.get("text").and_then(Value::as_str)) {
                    (Some("text"), Some(t)) => text.push_str(t),
                    (Some("text"), None) => {
                        return Err(ApiError::invalid(
                            param,
                            format!("{param}[{j}]: a text part needs 'text', a string"),
                        ))
                    }
                    _ => {
                        return Err(ApiError::invalid(
                            param,
                            format!("{param}[{j}]: only text parts ({{\"type\": \"text\", \"text\": ...}}) are supported"),
                        ))
                    }
                }
            }
            Ok(text)
        }
        _ => Err(wrong(param, "a string or an array of text parts", v)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn obj(s: &str) -> Map<String, Value> {
        parse_body(s.as_bytes()).unwrap()
    }

    fn completion_err(s: &str) -> ApiError {
        parse_completion(&obj(s)).unwrap_err()
    }

    #[test]
    fn a_full_completion_request_parses() {
        let r = parse_completion(&obj(
            r#"{"model":"m","prompt":[1,2,3],"max_tokens":5,"temperature":0.5,"top_p":0.9,
               "seed":-1,"stop":["a","b"],"stream":true,"stream_options":{"include_usage":true},
               "n":1,"user":"u","logprobs":null,"presence_penalty":0}"#,
        ))
        .unwrap();
        assert_eq!(r.prompt, Prompt::Tokens(vec![1, 2, 3]));
        let o = r.options;
        assert_eq!(o.model.as_deref(), Some("m"));
        assert_eq!(o.max_tokens, Some(5));
        assert_eq!(o.sampling.temperature, 0.5);
        assert_eq!(o.sampling.seed, u64::MAX);
        assert_eq!(o.stop, ["a", "b"]);
        assert!(o.stream && o.include_usage);
        let r = parse_completion(&obj(r#"{"prompt":["hi"],"stop":"x"}"#)).unwrap();
        assert_eq!(r.prompt, Prompt::Text("hi".into()));
        assert_eq!(r.options.stop, ["x"]);
    }

    #[test]
    fn bad_fields_are_named() {
        let e = completion_err(r#"{"prompt":"x","max_tokens":"5"}"#);
        assert_eq!(e.param.as_deref(), Some("max_tokens"));
        assert_eq!(e.message, "'max_tokens' must be an integer, not a string");
        let e = completion_err(r#"{"prompt":"x","max_tokens":1e30}"#);
        assert!(e.message.contains("must be an integer from 1"), "{e:?}");
        let e = completion_err(r#"{"prompt":"x","max_tokens":18446744073709551616}"#);
        assert!(e.message.contains("must be an integer from 1"), "{e:?}");
        let e = completion_err(r#"{"prompt":"x","temperature":3}"#);
        assert_eq!(e.message, "'temperature' must be in [0, 2], not 3");
        let e = completion_err(r#"{"prompt":"x","n":2}"#);
        assert!(e.message.contains("'n' is not supported"), "{e:?}");
        let e = completion_err(r#"{"prompt":"x","frobnicate":2}"#);
        assert_eq!(
            e.message,
            "Unrecognized request argument supplied: frobnicate"
        );
        let e = completion_err(r#"{"prompt":[[1,2],[3]]}"#);
        assert!(e.message.contains("batch"), "{e:?}");
        let e = completion_err(r#"{"prompt":[1,-2]}"#);
        assert_eq!(e.param.as_deref(), Some("prompt"));
        let e = completion_err(r#"{"prompt":{"a":1}}"#);
        assert!(e.message.contains("must be a string, an array"), "{e:?}");
        assert!(completion_err(r#"{"max_tokens":1}"#)
            .message
            .contains("required"));
        let e = parse_body(b"{\"prompt\":\"\xff\"}").unwrap_err();
        assert!(e.message.contains("not UTF-8"), "{e:?}");
        let e = parse_body(b"{\"prompt\":").unwrap_err();
        assert!(e.message.contains("not valid JSON"), "{e:?}");
        let e = parse_body(b"[1]").unwrap_err();
        assert!(e.message.contains("not an array"), "{e:?}");
        assert!(e.body().starts_with(r#"{"error":{"#), "{}", e.body());
    }

    #[test]
    fn chat_messages_are_checked() {
        let r = parse_chat(&obj(
            r#"{"messages":[{"role":"system","content":"s"},
               {"role":"user","content":[{"type":"text","text":"a"},{"type":"text","text":"b"}]}]}"#,
        ))
        .unwrap();
        assert_eq!(r.messages[1].content, "ab");
        let err = |s: &str| parse_chat(&obj(s)).unwrap_err();
        assert!(err(r#"{"messages":[]}"#).message.contains("empty"));
        assert!(err(r#"{"messages":"hi"}"#)
            .message
            .contains("array of messages"));
        let e = err(r#"{"messages":[{"role":"user"}]}"#);
        assert_eq!(e.param.as_deref(), Some("messages[0].content"));
        let e = err(r#"{"messages":[{"role":1,"content":"x"}]}"#);
        assert_eq!(e.param.as_deref(), Some("messages[0].role"));
        let e = err(r#"{"messages":[{"role":"user","content":[{"type":"image_url"}]}]}"#);
        assert!(e.message.contains("only text parts"), "{e:?}");
    }
}
