//! A loaded model with the tokens of its KV cache, kept across calls (see
//! helpers' SESSION-API.md: the contract `mkc chat` and `mkc serve` build on).
//!
//! STAND-IN: this version keeps only the token history and re-runs all of it through
//! [`run::generate`] on each call (so every call reloads the model and recomputes the cache).
//! It has the contract's API and semantics, so callers written against it work unchanged
//! with the real session, which keeps the engine and its cache loaded.

use crate::run::{self, Generation, RunOptions};
use crate::sample::SamplingOptions;
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};

/// One model with the tokens in its cache.
pub struct Session {
    path: PathBuf,
    options: RunOptions,
    context: usize,
    tokens: Vec<i64>,
}

impl Session {
    /// Loads the model once (weights, engine, artifact); `context` is the positions the cache
    /// holds (at most the model's max_position_embeddings).
    pub fn open(path: &Path, o: &RunOptions, context: usize) -> Result<Session, String> {
        let model = mkc_frontends::HfModel::open(path)?;
        let most = model.config.max_position_embeddings;
        if context == 0 || context as i64 > most {
            return Err(format!(
                "{}: a context of {context} positions: it must be from 1 to the model's {most} (its max_position_embeddings)",
                path.display()
            ));
        }
        // Loads once with no step run, so that what cannot load (no weights, a bad artifact,
        // options the engine ignores) fails here, not at the first request.
        let mut none = |_| Ok(ControlFlow::Continue(()));
        run::generate(path, o, &[0], 0, &mut none)?;
        Ok(Session {
            path: path.to_path_buf(),
            options: o.clone(),
            context,
            tokens: Vec::new(),
        })
    }

    /// Positions the cache holds.
    pub fn context(&self) -> usize {
        self.context
    }

    /// The tokens already in the cache (fed or generated), in order.
    pub fn tokens(&self) -> &[i64] {
        &self.tokens
    }

    /// Forgets everything from position `len` on (0: a fresh conversation).
    pub fn truncate(&mut self, len: usize) {
        self.tokens.truncate(len);
    }

    /// Feeds `prompt` after the tokens already in the cache, then generates up to `max_new`
    /// tokens (stopping at `eos`, or when `on_token` returns Break), sampling with
    /// `sampling`. The generated tokens stay in the cache (an end-of-sequence token too). A
    /// prompt that does not fit the context is an error before anything runs.
    pub fn generate(
        &mut self,
        prompt: &[i64],
        max_new: usize,
        sampling: &SamplingOptions,
        eos: &[i64],
        on_token: &mut dyn FnMut(i64) -> Result<ControlFlow<()>, String>,
    ) -> Result<Generation, String> {
        let used = self.tokens.len() + prompt.len();
        if used + max_new > self.context {
            return Err(format!(
                "{} cached and {} new prompt tokens and {max_new} to generate need {} positions, more than the session's context ({})",
                self.tokens.len(),
                prompt.len(),
                used + max_new,
                self.context
            ));
        }
        let mut all = self.tokens.clone();
        all.extend_from_slice(prompt);
        let o = RunOptions {
            sampling: sampling.clone(),
            eos: eos.to_vec(),
            ..self.options.clone()
        };
        let g = run::generate(&self.path, &o, &all, max_new, on_token)?;
        all.extend_from_slice(&g.generated);
        self.tokens = all;
        Ok(g)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::Engine;
    use crate::import::ModelOptions;
    use crate::level::Level;

    fn options() -> RunOptions {
        RunOptions {
            model: ModelOptions {
                ctx: 32,
                ..ModelOptions::default()
            },
            engine: Engine::Interp,
            level: Level::Tensor,
            artifact: None,
            target: Default::default(),
            banned: Vec::new(),
            eos: Vec::new(),
            sampling: SamplingOptions::default(),
        }
    }

    fn fixture() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/mistral-tiny")
    }

    /// Continuing a session gives the tokens one generation of the whole history gives.
    #[test]
    fn a_session_continues_where_it_left_off() {
        let prompt = [382, 348, 126, 501, 438, 56, 251, 406, 125, 65, 22];
        let greedy = SamplingOptions::default();
        let mut go = |_| Ok(ControlFlow::Continue(()));
        let mut s = Session::open(&fixture(), &options(), 32).unwrap();
        let a = s.generate(&prompt, 3, &greedy, &[], &mut go).unwrap();
        let b = s.generate(&[], 3, &greedy, &[], &mut go).unwrap();
        assert_eq!(
            [a.generated, b.generated].concat(),
            [302, 418, 302, 386, 235, 386]
        );
        assert_eq!(s.tokens().len(), 17);
        s.truncate(11);
        let c = s.generate(&[], 2, &greedy, &[], &mut go).unwrap();
        assert_eq!(c.generated, [302, 418]);
        let e = s
            .generate(&[1; 10], 10, &greedy, &[], &mut go)
            .err()
            .unwrap();
        assert!(e.contains("more than the session's context (32)"), "{e}");
        assert!(Session::open(&fixture(), &options(), 0).is_err());
        // The tokens stay as they were after a refused call.
        assert_eq!(s.tokens().len(), 13);
    }
}
