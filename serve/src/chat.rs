//! The model's chat template: found beside the model (or in a GGUF file) and rendered
//! with minijinja, as transformers' `apply_chat_template` renders it.
//!
//! MERGE NOTE: `mkc chat` has its own template loading and rendering (the chat helper's);
//! at merge, [`render_chat`] and [`ChatTemplate::find`] give way to that one.

use crate::api::Message;
use mkc_driver::run::TokenizerInfo;
use std::path::{Path, PathBuf};

/// A chat template and the special tokens it names.
#[derive(Clone, Debug)]
pub struct ChatTemplate {
    pub template: String,
    pub bos: String,
    pub eos: String,
}

impl ChatTemplate {
    /// The model's template: a GGUF file's `tokenizer.chat_template`, else
    /// tokenizer_config.json's `chat_template`, else chat_template.jinja beside the model;
    /// `None` where it has none.
    pub fn find(model: &Path, info: &TokenizerInfo) -> Result<Option<ChatTemplate>, String> {
        let token = |id: Option<u32>| {
            id.and_then(|i| info.tokenizer.id_to_token(i))
                .unwrap_or_default()
        };
        if let Some(t) = &info.chat_template {
            return Ok(Some(ChatTemplate {
                template: t.clone(),
                bos: token(info.bos),
                eos: token(info.eos.first().copied()),
            }));
        }
        let dir = if model.is_dir() {
            model.to_path_buf()
        } else {
            model.parent().map(PathBuf::from).unwrap_or_default()
        };
        let config_path = dir.join("tokenizer_config.json");
        let config: serde_json::Value = if config_path.is_file() {
            let text = std::fs::read_to_string(&config_path)
                .map_err(|e| format!("cannot read {}: {e}", config_path.display()))?;
            serde_json::from_str(&text)
                .map_err(|e| format!("{}: not JSON: {e}", config_path.display()))?
        } else {
            serde_json::Value::Null
        };
        // A special token is a string or {"content": string}.
        let special = |key: &str| {
            let v = &config[key];
            v.as_str()
                .or_else(|| v["content"].as_str())
                .map(str::to_string)
        };
        let template = match config["chat_template"].as_str() {
            Some(t) => t.to_string(),
            None => {
                let file = dir.join("chat_template.jinja");
                if !file.is_file() {
                    return Ok(None);
                }
                std::fs::read_to_string(&file)
                    .map_err(|e| format!("cannot read {}: {e}", file.display()))?
            }
        };
        Ok(Some(ChatTemplate {
            template,
            bos: special("bos_token").unwrap_or_else(|| token(info.bos)),
            eos: special("eos_token").unwrap_or_else(|| token(info.eos.first().copied())),
        }))
    }
}

/// The prompt text of `messages` with the generation prompt added (the assistant's turn
/// opened), as transformers renders `template`.
pub fn render_chat(
    template: &str,
    messages: &[Message],
    bos: &str,
    eos: &str,
) -> Result<String, String> {
    let mut env = minijinja::Environment::new();
    // Python's str methods (strip, startswith, ...), which Hugging Face templates call.
    env.set_unknown_method_callback(minijinja_contrib::pycompat::unknown_method_callback);
    // transformers' Jinja environment: trim_blocks and lstrip_blocks.
    env.set_trim_blocks(true);
    env.set_lstrip_blocks(true);
    env.add_function(
        "raise_exception",
        |msg: String| -> Result<(), minijinja::Error> {
            Err(minijinja::Error::new(
                minijinja::ErrorKind::InvalidOperation,
                msg,
            ))
        },
    );
    env.add_template("chat", template)
        .map_err(|e| format!("the chat template does not parse: {e}"))?;
    let messages: Vec<_> = messages
        .iter()
        .map(|m| minijinja::context! { role => m.role, content => m.content })
        .collect();
    env.get_template("chat")
        .and_then(|t| {
            t.render(minijinja::context! {
                messages => messages,
                add_generation_prompt => true,
                bos_token => bos,
                eos_token => eos,
            })
        })
        .map_err(|e| format!("the chat template failed: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(role: &str, content: &str) -> Message {
        Message {
            role: role.into(),
            content: content.into(),
        }
    }

    /// SmolLM2's template, as transformers renders it.
    #[test]
    fn smollm2_template_renders_as_transformers_does() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../shared/fixtures/smollm2-135m-q4_1/chat_template.jinja");
        let Ok(t) = std::fs::read_to_string(&path) else {
            eprintln!("SKIPPED: no {}", path.display());
            return;
        };
        let out = render_chat(&t, &[msg("user", "Hi")], "", "").unwrap();
        assert_eq!(
            out,
            "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n"
        );
        let out = render_chat(&t, &[msg("system", "S"), msg("user", "Q")], "", "").unwrap();
        assert_eq!(
            out,
            "<|im_start|>system\nS<|im_end|>\n<|im_start|>user\nQ<|im_end|>\n<|im_start|>assistant\n"
        );
    }

    /// Block tags take their line's indentation and newline with them, as transformers'
    /// environment (trim_blocks, lstrip_blocks) does.
    #[test]
    fn block_lines_are_trimmed_as_transformers_does() {
        let t = "{% for m in messages %}\n    {% if m.role == 'user' %}\nQ: {{ m.content }}\n    {% endif %}\n{% endfor %}\n{% if add_generation_prompt %}A:{% endif %}\n";
        let out = render_chat(t, &[msg("user", "a"), msg("user", "b")], "", "").unwrap();
        assert_eq!(out, "Q: a\nQ: b\nA:");
    }

    #[test]
    fn template_errors_are_reported() {
        let t = "{{ bos_token }}{% if messages[0].role != 'user' %}{{ raise_exception('user first') }}{% endif %}{{ messages[0].content.strip() }}";
        assert_eq!(
            render_chat(t, &[msg("user", " x ")], "<s>", "").unwrap(),
            "<s>x"
        );
        let e = render_chat(t, &[msg("system", "x")], "", "").unwrap_err();
        assert!(e.contains("user first"), "{e}");
        let e = render_chat("{% for %}", &[], "", "").unwrap_err();
        assert!(e.contains("does not parse"), "{e}");
    }
}
