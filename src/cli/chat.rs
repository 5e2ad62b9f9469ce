//! `mkc chat`: an interactive conversation with a model, through its own chat template, the
//! KV cache kept across turns.

use super::compile::{ModelArgs, TargetArgs};
use super::finish;
use super::run::{EngineArgs, SamplingArgs};
use clap::Args;
use mkc_driver::chat::{common_prefix, ChatTemplate, Message};
use mkc_driver::run::{tokenizer_of, RunOptions, TokenizerInfo};
use mkc_driver::session::{max_context, Generation, Session};
use mkc_driver::stream::TextStream;
use std::io::{BufRead, IsTerminal, Write};
use std::ops::ControlFlow;
use std::process::ExitCode;

#[derive(Args)]
pub struct ChatArgs {
    #[command(flatten)]
    pub model: ModelArgs,
    #[command(flatten)]
    pub target: TargetArgs,
    #[command(flatten)]
    pub engine: EngineArgs,
    /// The system message the conversation starts with (without it, the template's own
    /// default, if it has one).
    #[arg(long, value_name = "TEXT")]
    pub system: Option<String>,
    /// Tokens each answer may have, at most (it ends earlier at the model's
    /// end-of-sequence token).
    #[arg(long, default_value_t = 512)]
    pub max_new_tokens: usize,
    /// End an answer once its text contains STRING (repeatable). The answer is printed,
    /// and kept in the conversation, up to it, without it.
    #[arg(long, value_name = "STRING")]
    pub stop: Vec<String>,
    #[command(flatten)]
    pub sampling: SamplingArgs,
    /// After each answer, print a JSON line on stderr: the tokens of the rendered
    /// conversation, how many the cache already held (reused) and how many were fed, the
    /// generated tokens and tokens/s.
    #[arg(long, short)]
    pub verbose: bool,
}

/// What a turn did, for --verbose.
struct Turn<'a> {
    number: usize,
    prompt: &'a [i64],
    reused: usize,
    fed: usize,
    g: &'a Generation,
}

impl Turn<'_> {
    fn json(&self) -> String {
        serde_json::json!({
            "turn": self.number,
            "prompt_ids": self.prompt,
            "reused": self.reused,
            "fed": self.fed,
            "generated": self.g.generated,
            "stop_reason": self.g.stop_reason.name(),
            "tokens_per_s": (self.g.steps as f64 / self.g.seconds.max(1e-9) * 10.0).round() / 10.0,
        })
        .to_string()
    }
}

/// The conversation: its messages, the template and tokenizer that render them, the
/// session that holds them.
struct Chat<'a> {
    a: &'a ChatArgs,
    info: &'a TokenizerInfo,
    template: ChatTemplate,
    session: Session,
    eos: Vec<i64>,
    messages: Vec<Message>,
    turns: usize,
}

impl Chat<'_> {
    /// The conversation's first messages: the system message, if any.
    fn start(&mut self) {
        self.messages.clear();
        if let Some(s) = &self.a.system {
            self.messages.push(Message::new("system", s));
        }
    }

    /// One user message in, the answer streamed out.
    fn turn(&mut self, text: &str, out: &mut dyn Write) -> Result<(), String> {
        self.messages.push(Message::new("user", text));
        let rendered = self.template.render(&self.messages, true)?;
        let enc = self
            .info
            .tokenizer
            .encode(rendered.as_str(), false)
            .map_err(|e| format!("cannot encode the conversation: {e}"))?;
        let prompt: Vec<i64> = enc.get_ids().iter().map(|&i| i64::from(i)).collect();
        // The cache keeps what the conversation shares with it; only the rest is fed (at
        // least one token, whose step gives the answer's first).
        let reused = common_prefix(self.session.tokens(), &prompt).min(prompt.len() - 1);
        self.session.truncate(reused);
        let mut stream = TextStream::of_tokenizer(&self.info.tokenizer, &self.a.stop);
        let g = self.session.generate(
            &prompt[reused..],
            self.a.max_new_tokens,
            &self.a.sampling.options(),
            &self.eos,
            &mut |t| {
                let piece = stream.push(t as u32)?;
                let _ = write!(out, "{}", piece.text);
                let _ = out.flush();
                Ok(if piece.stop {
                    ControlFlow::Break(())
                } else {
                    ControlFlow::Continue(())
                })
            },
        );
        let g = match g {
            Ok(g) => g,
            Err(e) => {
                // The turn did not happen: the conversation stays as it was.
                self.messages.pop();
                return Err(e);
            }
        };
        let tail = stream.finish()?.text;
        let _ = writeln!(out, "{tail}");
        let _ = out.flush();
        self.messages.push(Message::new("assistant", stream.text()));
        self.turns += 1;
        if self.session.tokens().len() >= self.session.context() {
            eprintln!(
                "mkc: the conversation fills the context ({} positions): /reset starts over (--ctx holds more)",
                self.session.context()
            );
        }
        if self.a.verbose {
            let turn = Turn {
                number: self.turns,
                prompt: &prompt,
                reused,
                fed: prompt.len() - reused,
                g: &g,
            };
            eprintln!("{}", turn.json());
        }
        Ok(())
    }
}

pub fn run_chat(a: ChatArgs) -> ExitCode {
    finish(chat(&a))
}

fn chat(a: &ChatArgs) -> Result<(), String> {
    let model = &a.model.model;
    let info = tokenizer_of(model)?.ok_or_else(|| {
        format!(
            "mkc chat needs the model's tokenizer: {} is not a GGUF file with one, and there is no tokenizer.json beside it",
            model.display()
        )
    })?;
    let template = ChatTemplate::of_model(model, &info)?.ok_or_else(|| {
        format!(
            "{} has no chat template: no tokenizer.chat_template in a GGUF file, no chat_template in a tokenizer_config.json beside it, and no chat_template.jinja (a base model, not an instruction-tuned one?)",
            model.display()
        )
    })?;
    let eos: Vec<i64> = info.eos.iter().map(|&t| i64::from(t)).collect();
    let o = RunOptions {
        model: a.model.options(),
        engine: a.engine.engine(),
        level: a.engine.level.0,
        artifact: a.engine.artifact.clone(),
        target: a.target.spec()?,
        banned: Vec::new(),
        eos: eos.clone(),
        sampling: a.sampling.options(),
    };
    o.sampling.validate()?;
    if a.model.ctx <= 0 {
        return Err(format!("--ctx must be 1 or more, not {}", a.model.ctx));
    }
    let context = (a.model.ctx as usize).min(max_context(model)?);
    let start = std::time::Instant::now();
    let session = Session::open(model, &o, context)?;
    eprintln!(
        "mkc: chat with {} on {} ({} positions, ready in {:.1} s); /reset starts over, /exit or Ctrl-D ends",
        model.display(),
        o.engine.name(),
        session.context(),
        start.elapsed().as_secs_f64()
    );
    let mut chat = Chat {
        a,
        info: &info,
        template,
        session,
        eos,
        messages: Vec::new(),
        turns: 0,
    };
    chat.start();
    let stdin = std::io::stdin();
    let interactive = stdin.is_terminal();
    let mut out = std::io::stdout();
    let mut lines = stdin.lock().lines();
    loop {
        if interactive {
            let _ = write!(out, "> ");
            let _ = out.flush();
        }
        let Some(line) = lines.next() else {
            break;
        };
        let line = line.map_err(|e| format!("cannot read stdin: {e}"))?;
        match line.trim() {
            "" => continue,
            "/exit" | "/quit" => break,
            "/reset" => {
                chat.start();
                chat.session.truncate(0);
            }
            text => {
                // At a terminal the conversation goes on after an error; from a pipe it ends.
                match chat.turn(text, &mut out) {
                    Err(e) if interactive => eprintln!("mkc: error: {e}"),
                    r => r?,
                }
            }
        }
    }
    Ok(())
}
