//! Chat templates: a model's own Jinja template (a GGUF file's `tokenizer.chat_template`,
//! tokenizer_config.json's `chat_template`, or the chat_template.jinja beside it) rendered
//! with minijinja the way transformers' `apply_chat_template` renders it: blocks trimmed and
//! left-stripped, loop controls, `tojson`, Python's string methods, `raise_exception`, and
//! `messages`,
//! `add_generation_prompt`, `bos_token` and `eos_token` in scope.

use crate::run::TokenizerInfo;
use std::path::{Path, PathBuf};

/// One message of a conversation.
#[derive(Clone, Debug, PartialEq)]
pub struct Message {
    /// "system", "user" or "assistant".
    pub role: String,
    pub content: String,
}

impl Message {
    pub fn new(role: &str, content: &str) -> Message {
        Message {
            role: role.into(),
            content: content.into(),
        }
    }
}

/// A model's chat template, compiled.
pub struct ChatTemplate {
    env: minijinja::Environment<'static>,
    /// Where it came from (for messages).
    pub origin: String,
    pub bos_token: String,
    pub eos_token: String,
}

/// The template's name in its environment.
const NAME: &str = "chat_template";

impl ChatTemplate {
    /// Compiles `source` (from `origin`) with the special tokens the template may name.
    pub fn new(
        source: String,
        origin: String,
        bos_token: String,
        eos_token: String,
    ) -> Result<ChatTemplate, String> {
        let mut env = minijinja::Environment::new();
        // transformers' environment: trim_blocks and lstrip_blocks, Python's str methods.
        env.set_trim_blocks(true);
        env.set_lstrip_blocks(true);
        env.set_unknown_method_callback(minijinja_contrib::pycompat::unknown_method_callback);
        env.add_function("raise_exception", |msg: String| -> Result<String, _> {
            Err(minijinja::Error::new(
                minijinja::ErrorKind::InvalidOperation,
                msg,
            ))
        });
        env.add_filter("tojson", tojson);
        env.add_template_owned(NAME, source)
            .map_err(|e| format!("{origin}: not a Jinja template: {e:#}"))?;
        Ok(ChatTemplate {
            env,
            origin,
            bos_token,
            eos_token,
        })
    }

    /// The model's template: a GGUF file's own, else `chat_template` of the
    /// tokenizer_config.json beside it, else the chat_template.jinja beside it; `None` when
    /// it has none.
    pub fn of_model(model: &Path, info: &TokenizerInfo) -> Result<Option<ChatTemplate>, String> {
        let dir = if model.is_dir() {
            model.to_path_buf()
        } else {
            model.parent().map(PathBuf::from).unwrap_or_default()
        };
        let config_path = dir.join("tokenizer_config.json");
        let config = if config_path.is_file() {
            let text = std::fs::read_to_string(&config_path)
                .map_err(|e| format!("cannot read {}: {e}", config_path.display()))?;
            let v: serde_json::Value = serde_json::from_str(&text)
                .map_err(|e| format!("{}: not JSON: {e}", config_path.display()))?;
            Some(v)
        } else {
            None
        };
        let jinja = dir.join("chat_template.jinja");
        let (source, origin) = if let Some(t) = &info.chat_template {
            (
                t.clone(),
                format!("{}: tokenizer.chat_template", model.display()),
            )
        } else if let Some(t) = config.as_ref().and_then(template_of_config) {
            (t, format!("{}: chat_template", config_path.display()))
        } else if jinja.is_file() {
            let t = std::fs::read_to_string(&jinja)
                .map_err(|e| format!("cannot read {}: {e}", jinja.display()))?;
            (t, jinja.display().to_string())
        } else {
            return Ok(None);
        };
        // The special tokens' text: tokenizer_config.json's, else the tokenizer's own.
        let token_of = |key: &str, id: Option<u32>| {
            config
                .as_ref()
                .and_then(|c| special_token(c.get(key)?))
                .or_else(|| info.tokenizer.id_to_token(id?))
                .unwrap_or_default()
        };
        let bos = token_of("bos_token", info.bos);
        let eos = token_of("eos_token", info.eos.first().copied());
        ChatTemplate::new(source, origin, bos, eos).map(Some)
    }

    /// The conversation as the model reads it; with `add_generation_prompt`, ending where
    /// the assistant's answer starts.
    pub fn render(
        &self,
        messages: &[Message],
        add_generation_prompt: bool,
    ) -> Result<String, String> {
        use minijinja::Value;
        // Keys in the order transformers' messages have them (tojson shows it).
        let messages: Vec<Value> = messages
            .iter()
            .map(|m| {
                Value::from_iter([
                    ("role", Value::from(m.role.as_str())),
                    ("content", Value::from(m.content.as_str())),
                ])
            })
            .collect();
        let ctx = minijinja::context! {
            messages => messages,
            add_generation_prompt => add_generation_prompt,
            bos_token => self.bos_token.as_str(),
            eos_token => self.eos_token.as_str(),
        };
        let t = self
            .env
            .get_template(NAME)
            .map_err(|e| format!("{}: {e:#}", self.origin))?;
        t.render(ctx)
            .map_err(|e| format!("{}: cannot render the conversation: {e:#}", self.origin))
    }
}

/// transformers' `tojson`: Python's `json.dumps` (", " and ": " between items, non-ASCII
/// text kept, keys in their order), with its `indent`.
fn tojson(
    value: minijinja::Value,
    kwargs: minijinja::value::Kwargs,
) -> Result<String, minijinja::Error> {
    use serde::Serialize;
    let indent: Option<usize> = kwargs.get("indent")?;
    kwargs.assert_all_used()?;
    let mut out = Vec::new();
    let written = match indent {
        Some(n) => {
            let spaces = vec![b' '; n];
            let f = serde_json::ser::PrettyFormatter::with_indent(&spaces);
            value.serialize(&mut serde_json::Serializer::with_formatter(&mut out, f))
        }
        None => value.serialize(&mut serde_json::Serializer::with_formatter(
            &mut out,
            PythonFormatter,
        )),
    };
    written.map_err(|e| {
        minijinja::Error::new(minijinja::ErrorKind::InvalidOperation, e.to_string())
    })?;
    String::from_utf8(out)
        .map_err(|e| minijinja::Error::new(minijinja::ErrorKind::InvalidOperation, e.to_string()))
}

/// JSON with Python's default separators: ", " and ": ".
struct PythonFormatter;

impl serde_json::ser::Formatter for PythonFormatter {
    fn begin_array_value<W: ?Sized + std::io::Write>(
        &mut self,
        w: &mut W,
        first: bool,
    ) -> std::io::Result<()> {
        if first {
            Ok(())
        } else {
            w.write_all(b", ")
        }
    }

    fn begin_object_key<W: ?Sized + std::io::Write>(
        &mut self,
        w: &mut W,
        first: bool,
    ) -> std::io::Result<()> {
        if first {
            Ok(())
        } else {
            w.write_all(b", ")
        }
    }

    fn begin_object_value<W: ?Sized + std::io::Write>(&mut self, w: &mut W) -> std::io::Result<()> {
        w.write_all(b": ")
    }
}

/// tokenizer_config.json's `chat_template`: a string, or a list of named templates (the
/// one named "default", else the first).
fn template_of_config(config: &serde_json::Value) -> Option<String> {
    match config.get("chat_template")? {
        serde_json::Value::String(s) => Some(s.clone()),
        serde_json::Value::Array(list) => {
            let pick = list
                .iter()
                .find(|t| t.get("name").and_then(|v| v.as_str()) == Some("default"))
                .or(list.first())?;
            pick.get("template")?.as_str().map(String::from)
        }
        _ => None,
    }
}

/// A special token in tokenizer_config.json: its text, or an object with its `content`.
fn special_token(v: &serde_json::Value) -> Option<String> {
    match v {
        serde_json::Value::String(s) => Some(s.clone()),
        serde_json::Value::Object(o) => o.get("content")?.as_str().map(String::from),
        _ => None,
    }
}

/// How many tokens `a` and `b` share from the start.
pub fn common_prefix(a: &[i64], b: &[i64]) -> usize {
    a.iter().zip(b).take_while(|(x, y)| x == y).count()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn smollm2() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/fixtures/smollm2-135m-q4_1")
    }

    fn template(source: &str) -> ChatTemplate {
        ChatTemplate::new(source.into(), "test".into(), "<s>".into(), "</s>".into()).unwrap()
    }

    #[test]
    fn smollm2_renders_as_transformers_does() {
        let model = smollm2();
        let info = crate::run::tokenizer_of(&model).unwrap().unwrap();
        let t = ChatTemplate::of_model(&model, &info).unwrap().unwrap();
        assert!(t.origin.ends_with("chat_template.jinja"), "{}", t.origin);
        assert_eq!(
            (t.bos_token.as_str(), t.eos_token.as_str()),
            ("<|im_start|>", "<|im_end|>")
        );
        let chat = [Message::new("user", "Hi!")];
        // transformers 5.25's apply_chat_template(tokenize=False, add_generation_prompt=True).
        assert_eq!(
            t.render(&chat, true).unwrap(),
            "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n<|im_start|>user\nHi!<|im_end|>\n<|im_start|>assistant\n"
        );
        let chat = [
            Message::new("system", "Be brief."),
            Message::new("user", "Hi!"),
            Message::new("assistant", "Hello."),
        ];
        assert_eq!(
            t.render(&chat, false).unwrap(),
            "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi!<|im_end|>\n<|im_start|>assistant\nHello.<|im_end|>\n"
        );
    }

    #[test]
    fn templates_get_what_hugging_face_templates_use() {
        // Blocks trimmed and left-stripped, Python's methods, the special tokens.
        let t = template(
            "{{ bos_token }}\n{% for m in messages %}\n  {{ m['role'].upper() }}: {{ m.content.strip() }}{{ eos_token }}\n  {% endfor %}",
        );
        let chat = [
            Message::new("user", "  hi "),
            Message::new("assistant", "yo"),
        ];
        // (What jinja2 3.1 renders with trim_blocks and lstrip_blocks.)
        assert_eq!(
            t.render(&chat, false).unwrap(),
            "<s>\n  USER: hi</s>\n  ASSISTANT: yo</s>\n"
        );
        // raise_exception ends the render with the template's message.
        let t = template(
            "{% if messages[0].role != 'user' %}{{ raise_exception('Conversations must start with a user message') }}{% endif %}ok",
        );
        let e = t
            .render(&[Message::new("assistant", "x")], true)
            .unwrap_err();
        assert!(
            e.contains("Conversations must start with a user message"),
            "{e}"
        );
        assert_eq!(t.render(&[Message::new("user", "x")], true).unwrap(), "ok");
        // transformers' loop controls and tojson (templates with tools use both).
        let t = template(
            "{% for m in messages %}{% if m.role == 'stop' %}{% break %}{% endif %}{{ m | tojson }};{% endfor %}",
        );
        let chat = [Message::new("user", "a\"b"), Message::new("stop", "")];
        // (What jinja2 3.1 renders with transformers' tojson: Python's json.dumps.)
        assert_eq!(
            t.render(&chat, false).unwrap(),
            r#"{"role": "user", "content": "a\"b"};"#
        );
        let t = template("{{ {'a': [1, 'é<'], 'b': {}} | tojson(indent=2) }}");
        assert_eq!(
            t.render(&[], false).unwrap(),
            "{\n  \"a\": [\n    1,\n    \"é<\"\n  ],\n  \"b\": {}\n}"
        );
        // A template that does not parse is named.
        let e = ChatTemplate::new(
            "{% for %}".into(),
            "x.jinja".into(),
            String::new(),
            String::new(),
        )
        .err()
        .unwrap();
        assert!(e.starts_with("x.jinja: not a Jinja template"), "{e}");
        assert_eq!(common_prefix(&[1, 2, 3], &[1, 2, 4, 5]), 2);
    }

    #[test]
    fn a_config_template_comes_before_the_file_and_lists_pick_default() {
        let v = serde_json::json!({"chat_template": [
            {"name": "tool_use", "template": "T"}, {"name": "default", "template": "D"}]});
        assert_eq!(template_of_config(&v).as_deref(), Some("D"));
        let v = serde_json::json!({"chat_template": "S"});
        assert_eq!(template_of_config(&v).as_deref(), Some("S"));
        assert_eq!(template_of_config(&serde_json::json!({})), None);
        assert_eq!(
            special_token(&serde_json::json!({"content": "<s>", "lstrip": false})).as_deref(),
            Some("<s>")
        );
    }
}
