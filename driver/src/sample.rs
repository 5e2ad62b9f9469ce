//! Sampling the next token from a step's logits on the host: temperature, top-k and top-p
//! (nucleus) filtering, drawn with a seeded generator of our own so that a run is
//! reproducible from its `--seed`.
//!
//! The filters apply in the order transformers' `generate` builds its logits warpers
//! (`GenerationMixin._get_logits_processor`: `TemperatureLogitsWarper`, then
//! `TopKLogitsWarper`, then `TopPLogitsWarper`): the logits are divided by the temperature
//! first, top-k keeps the k best of those (and any tied with the k-th), and top-p keeps the
//! smallest set of the remaining tokens, best first, whose softmax mass reaches p (a token is
//! kept while the mass of the tokens before it is below p), so top-p sees the temperature's
//! distribution restricted to the top k.

/// How to pick each next token.
#[derive(Clone, Debug, PartialEq)]
pub struct SamplingOptions {
    /// 0: greedy (the step's argmax); above 0 the logits are divided by it and a token is
    /// drawn from their softmax.
    pub temperature: f64,
    /// Keep only the `top_k` best tokens (0: all).
    pub top_k: usize,
    /// Keep only the smallest set of best tokens whose probability mass reaches `top_p`
    /// (1: all).
    pub top_p: f64,
    /// The seed of the generator the draws come from.
    pub seed: u64,
}

impl Default for SamplingOptions {
    fn default() -> Self {
        SamplingOptions {
            temperature: 0.0,
            top_k: 0,
            top_p: 1.0,
            seed: 0,
        }
    }
}

impl SamplingOptions {
    /// Whether each token is the argmax (temperature 0): no draw, no logits needed.
    pub fn is_greedy(&self) -> bool {
        self.temperature == 0.0
    }

    /// The options' own errors, named as the command line spells them.
    pub fn validate(&self) -> Result<(), String> {
        if !(self.temperature.is_finite() && self.temperature >= 0.0) {
            return Err(format!(
                "--temperature must be a finite number >= 0 (0: greedy), not {}",
                self.temperature
            ));
        }
        if !(self.top_p > 0.0 && self.top_p <= 1.0) {
            return Err(format!(
                "--top-p must be in (0, 1] (1: no nucleus filter), not {}",
                self.top_p
            ));
        }
        Ok(())
    }
}

/// xoshiro256** (Blackman and Vigna), seeded through splitmix64: small, fast, and the same
/// sequence on every machine.
#[derive(Clone, Debug)]
pub struct Rng {
    s: [u64; 4],
}

impl Rng {
    pub fn new(seed: u64) -> Rng {
        let mut x = seed;
        let mut splitmix = || {
            x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = x;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^ (z >> 31)
        };
        Rng {
            s: [splitmix(), splitmix(), splitmix(), splitmix()],
        }
    }

    pub fn next_u64(&mut self) -> u64 {
        let s = &mut self.s;
        let result = s[1].wrapping_mul(5).rotate_left(7).wrapping_mul(9);
        let t = s[1] << 17;
        s[2] ^= s[0];
        s[3] ^= s[1];
        s[1] ^= s[2];
        s[0] ^= s[3];
        s[2] ^= t;
        s[3] = s[3].rotate_left(45);
        result
    }

    /// Uniform in [0, 1), with 53 random bits.
    pub fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }
}

/// Picks next tokens from logits as [`SamplingOptions`] say.
#[derive(Clone, Debug)]
pub struct Sampler {
    pub options: SamplingOptions,
    rng: Rng,
}

impl Sampler {
    pub fn new(options: SamplingOptions) -> Result<Sampler, String> {
        options.validate()?;
        let rng = Rng::new(options.seed);
        Ok(Sampler { options, rng })
    }

    /// The distribution a token is drawn from: (token, probability) of every token the
    /// filters keep, the probabilities summing to 1; best first where top-p is on or at most
    /// 1024 tokens are kept, else in token order. `banned` tokens are never
    /// kept. A NaN or +inf logit is an error naming the token.
    pub fn distribution(
        &self,
        logits: &[f64],
        banned: &[i64],
    ) -> Result<Vec<(usize, f64)>, String> {
        let o = &self.options;
        let t = if o.is_greedy() { 1.0 } else { o.temperature };
        let mut scores: Vec<(usize, f64)> = Vec::with_capacity(logits.len());
        for (i, &x) in logits.iter().enumerate() {
            if x.is_nan() || x == f64::INFINITY {
                return Err(format!("logit {i} is {x}"));
            }
            if x > f64::NEG_INFINITY && !banned.contains(&(i as i64)) {
                // 1. Temperature.
                scores.push((i, x / t));
            }
        }
        if scores.is_empty() {
            return Err("no token is left to generate (every logit is -inf or banned)".into());
        }
        // Best first; ties by the lower token id, so the order (and a run) is deterministic.
        let better = |a: &(usize, f64), b: &(usize, f64)| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0));
        if o.is_greedy() {
            let best = scores
                .iter()
                .min_by(|a, b| better(a, b))
                .expect("not empty");
            return Ok(vec![(best.0, 1.0)]);
        }
        // 2. Top-k: the k best, and any tied with the k-th (as `scores < topk[-1]` removes).
        if o.top_k > 0 && o.top_k < scores.len() {
            scores.select_nth_unstable_by(o.top_k - 1, better);
            let kth = scores[o.top_k - 1].1;
            let (top, rest) = scores.split_at(o.top_k);
            let mut kept = top.to_vec();
            kept.extend(rest.iter().filter(|s| s.1 == kth));
            scores = kept;
        }
        // Top-p needs the order; without it the draw takes the tokens as they are (a whole
        // vocabulary's sort would cost more than a small model's step).
        if o.top_p < 1.0 || scores.len() <= 1024 {
            scores.sort_by(better);
        }
        // Softmax of what is left.
        let max = scores.iter().map(|s| s.1).fold(f64::NEG_INFINITY, f64::max);
        let mut probs: Vec<(usize, f64)> =
            scores.iter().map(|&(i, s)| (i, (s - max).exp())).collect();
        let sum: f64 = probs.iter().map(|p| p.1).sum();
        for p in &mut probs {
            p.1 /= sum;
        }
        // 3. Top-p: a token stays while the mass before it is below p (at least one stays).
        if o.top_p < 1.0 {
            let mut before = 0.0;
            let keep = probs
                .iter()
                .take_while(|p| {
                    let stays = before < o.top_p;
                    before += p.1;
                    stays
                })
                .count()
                .max(1);
            probs.truncate(keep);
            let sum: f64 = probs.iter().map(|p| p.1).sum();
            for p in &mut probs {
                p.1 /= sum;
            }
        }
        Ok(probs)
    }

    /// The next token: the argmax when greedy, else a draw from [`Sampler::distribution`].
    pub fn pick(&mut self, logits: &[f64], banned: &[i64]) -> Result<i64, String> {
        let probs = self.distribution(logits, banned)?;
        if self.options.is_greedy() {
            return Ok(probs[0].0 as i64);
        }
        let u = self.rng.next_f64();
        let mut acc = 0.0;
        for &(i, p) in &probs {
            acc += p;
            if u < acc {
                return Ok(i as i64);
            }
        }
        // Rounding left the sum just under u: the last kept token.
        Ok(probs.last().expect("at least one token").0 as i64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sampler(temperature: f64, top_k: usize, top_p: f64, seed: u64) -> Sampler {
        Sampler::new(SamplingOptions {
            temperature,
            top_k,
            top_p,
            seed,
        })
        .unwrap()
    }

    /// A fixed logit vector with distinct values, best at token 7.
    fn logits() -> Vec<f64> {
        (0..32)
            .map(|i| ((i * 37 % 32) as f64) * 0.25 - 3.0)
            .collect()
    }

    #[test]
    fn the_same_seed_draws_the_same_tokens() {
        let l = logits();
        let draw = |seed| {
            let mut s = sampler(1.0, 0, 1.0, seed);
            (0..200)
                .map(|_| s.pick(&l, &[]).unwrap())
                .collect::<Vec<_>>()
        };
        assert_eq!(draw(3), draw(3));
        assert_ne!(draw(3), draw(4));
    }

    #[test]
    fn temperature_zero_is_the_argmax() {
        let l = logits();
        let best = l
            .iter()
            .enumerate()
            .max_by(|a, b| a.1.total_cmp(b.1))
            .unwrap()
            .0 as i64;
        let mut s = sampler(0.0, 3, 0.5, 9);
        for _ in 0..10 {
            assert_eq!(s.pick(&l, &[]).unwrap(), best);
        }
        // Banned tokens are skipped: the next best.
        let second = s.pick(&l, &[best]).unwrap();
        assert_ne!(second, best);
        assert!(l
            .iter()
            .enumerate()
            .all(|(i, &x)| i as i64 == best || x <= l[second as usize]));
    }

    #[test]
    fn top_k_never_draws_outside_the_k_best() {
        let l = logits();
        let mut order: Vec<usize> = (0..l.len()).collect();
        order.sort_by(|&a, &b| l[b].total_cmp(&l[a]));
        for k in [1, 2, 5] {
            let top: Vec<i64> = order[..k].iter().map(|&i| i as i64).collect();
            // A high temperature flattens the distribution, so the rest would come often.
            let mut s = sampler(50.0, k, 1.0, k as u64);
            let mut seen = std::collections::HashSet::new();
            for _ in 0..5000 {
                let t = s.pick(&l, &[]).unwrap();
                assert!(top.contains(&t), "k {k}: drew {t}, not one of {top:?}");
                seen.insert(t);
            }
            // ... and every one of the k comes.
            assert_eq!(seen.len(), k, "k {k}");
        }
    }

    #[test]
    fn top_p_keeps_the_smallest_set_that_reaches_p() {
        // Probabilities 0.5, 0.25, 0.125, 0.0625, 0.0625 (temperature 1).
        let l: Vec<f64> = [0.5f64, 0.25, 0.125, 0.0625, 0.0625]
            .iter()
            .map(|p| p.ln())
            .collect();
        let kept = |p: f64| {
            let s = sampler(1.0, 0, p, 0);
            s.distribution(&l, &[])
                .unwrap()
                .iter()
                .map(|x| x.0)
                .collect::<Vec<_>>()
        };
        assert_eq!(kept(0.4), vec![0]);
        assert_eq!(kept(0.45), vec![0]);
        assert_eq!(kept(0.6), vec![0, 1]);
        assert_eq!(kept(0.7), vec![0, 1]);
        assert_eq!(kept(0.8), vec![0, 1, 2]);
        assert_eq!(kept(1.0).len(), 5);
        // The kept mass is renormalized.
        let s = sampler(1.0, 0, 0.6, 0);
        let d = s.distribution(&l, &[]).unwrap();
        assert!((d[0].1 - 2.0 / 3.0).abs() < 1e-12 && (d[1].1 - 1.0 / 3.0).abs() < 1e-12);
        // Draws never leave the set.
        let mut s = sampler(1.0, 0, 0.8, 5);
        for _ in 0..2000 {
            assert!(s.pick(&l, &[]).unwrap() <= 2);
        }
        // Top-k applies first: with k = 1 top-p has one token to keep.
        assert_eq!(
            sampler(1.0, 1, 0.9, 0).distribution(&l, &[]).unwrap(),
            vec![(0, 1.0)]
        );
    }

    #[test]
    fn draws_follow_the_probabilities() {
        let l: Vec<f64> = [0.5f64, 0.3, 0.2].iter().map(|p| p.ln()).collect();
        let mut s = sampler(1.0, 0, 1.0, 11);
        let mut counts = [0usize; 3];
        let n = 20000;
        for _ in 0..n {
            counts[s.pick(&l, &[]).unwrap() as usize] += 1;
        }
        for (c, p) in counts.iter().zip([0.5, 0.3, 0.2]) {
            // Five standard deviations.
            let sd = (p * (1.0 - p) / n as f64).sqrt();
            assert!((*c as f64 / n as f64 - p).abs() < 5.0 * sd, "{counts:?}");
        }
    }

    #[test]
    fn nan_logits_and_bad_options_are_errors() {
        let mut l = logits();
        l[5] = f64::NAN;
        let e = sampler(1.0, 0, 1.0, 0).pick(&l, &[]).unwrap_err();
        assert_eq!(e, "logit 5 is NaN");
        let e = sampler(0.0, 0, 1.0, 0).pick(&l, &[]).unwrap_err();
        assert_eq!(e, "logit 5 is NaN");
        let bad = |temperature, top_p| {
            Sampler::new(SamplingOptions {
                temperature,
                top_k: 0,
                top_p,
                seed: 0,
            })
            .unwrap_err()
        };
        assert!(bad(-1.0, 1.0).contains("--temperature"));
        assert!(bad(f64::NAN, 1.0).contains("--temperature"));
        assert!(bad(1.0, 0.0).contains("--top-p"));
        assert!(bad(1.0, 1.5).contains("--top-p"));
        let all: Vec<i64> = (0..3).collect();
        let e = sampler(1.0, 0, 1.0, 0)
            .pick(&[0.0, 1.0, 2.0], &all)
            .unwrap_err();
        assert!(e.contains("no token is left"), "{e}");
    }
}
