//! The target description: every number about the GPU that a pass, the cost models or the
//! kernel generator uses, in one typed value. The module carries it as the attribute
//! `mkc.target = #mkc.target<"h100">` (a preset, then the fields that differ from it:
//! `#mkc.target<"h100", sms = 64>`), so every level's printed IR says what it was compiled
//! for; [`Target::of`] reads it (a module without one is compiled for the H100 preset).
//!
//! The presets' bandwidths are copy bandwidths measured on the device machines (read plus
//! write bytes, `mkc gpu-info --bandwidth`; docs/PERF.md); the other rates are the ones the
//! cost models were fitted with on the H100.

use crate::attr::Attr;
use crate::ir::Body;
use std::fmt::Write;

/// The module attribute that holds the target.
pub const TARGET_ATTR: &str = "mkc.target";

/// A GPU and what mkc's cost models assume of it.
#[derive(Clone, Debug, PartialEq)]
pub struct Target {
    /// The preset the fields started from (`h100`, `h200`).
    pub preset: String,
    /// The PTX target the kernel is built for.
    pub chip: String,
    /// Streaming multiprocessors: the persistent kernel runs one CTA on each.
    pub sms: u32,
    /// Global-memory bandwidth, bytes/s (a device-to-device copy's read plus write bytes).
    pub bandwidth: f64,
    /// An L2 byte's cost next to an HBM byte (the L2 serves about four times the bandwidth):
    /// activations stay in L2 between producer and consumer.
    pub l2_byte_cost: f64,
    /// f32 arithmetic one SM does per second on its CUDA cores (tasks compute in f32).
    pub sm_flops: f64,
    /// bf16 matrix arithmetic one SM does per second (the schedule's bound on a task).
    pub sm_matrix_flops: f64,
    /// Flop/s one SM sustains in decode attention (its loads and exps wait on each other).
    pub attention_flops: f64,
    /// Seconds from a producer's signal on one SM to a waiter on another seeing it.
    pub event_latency: f64,
    /// Seconds a grid-wide wait costs an idle GPU (fusion charges each group one).
    pub grid_sync: f64,
    /// Fixed seconds of one task (its wait, signal and pipeline fill).
    pub task_overhead: f64,
    /// Seconds each byte range a task names costs it (a descriptor it walks).
    pub range_cost: f64,
    /// Bytes of shared memory one CTA may use, static and dynamic.
    pub smem_per_cta: u32,
    /// 32-bit registers of one SM (the persistent kernel's one CTA may take them all).
    pub registers_per_sm: u32,
    /// Most registers one thread may use.
    pub registers_per_thread: u32,
    /// Most threads of one CTA.
    pub threads_per_cta: u32,
}

/// The field names as the attribute spells them, in printing order.
const FIELDS: [&str; 15] = [
    "chip",
    "sms",
    "bandwidth",
    "l2_byte_cost",
    "sm_flops",
    "sm_matrix_flops",
    "attention_flops",
    "event_latency",
    "grid_sync",
    "task_overhead",
    "range_cost",
    "smem_per_cta",
    "registers_per_sm",
    "registers_per_thread",
    "threads_per_cta",
];

/// One field's value, as read or printed.
#[derive(Clone, Debug, PartialEq)]
enum Value {
    Str(String),
    Int(u64),
    Float(f64),
}

impl Target {
    /// The presets' names.
    pub const PRESETS: [&'static str; 2] = ["h100", "h200"];

    /// The NVIDIA H100 SXM (80 GB HBM3): 132 SMs, 3.01 TB/s measured copy bandwidth.
    pub fn h100() -> Target {
        Target {
            preset: "h100".into(),
            chip: "sm_90a".into(),
            sms: 132,
            bandwidth: 3.013e12,
            l2_byte_cost: 0.25,
            sm_flops: 4.5e11,
            sm_matrix_flops: 7.5e12,
            attention_flops: 5.0e9,
            event_latency: 1.0e-6,
            // 4e6 byte-equivalents at the H100's bandwidth: about what a grid-wide wait costs.
            grid_sync: 4.0e6 / 3.013e12,
            task_overhead: 5.0e-7,
            range_cost: 2.0e-8,
            // Hopper: 227 KiB of shared memory a CTA may opt into, 64 Ki registers an SM.
            smem_per_cta: 227 << 10,
            registers_per_sm: 65536,
            registers_per_thread: 255,
            threads_per_cta: 1024,
        }
    }

    /// The NVIDIA H200 (141 GB HBM3e): the H100's chip with 4.26 TB/s measured copy bandwidth.
    pub fn h200() -> Target {
        Target {
            preset: "h200".into(),
            bandwidth: 4.26e12,
            ..Target::h100()
        }
    }

    /// A preset by name.
    pub fn preset(name: &str) -> Result<Target, String> {
        match name {
            "h100" => Ok(Target::h100()),
            "h200" => Ok(Target::h200()),
            _ => Err(format!(
                "unknown target '{name}'; the presets are {}",
                Target::PRESETS.join(", ")
            )),
        }
    }

    /// The target `body` is compiled for: its module's `mkc.target`, or the H100 preset.
    pub fn of(body: &Body) -> Result<Target, String> {
        match body.ops[body.root].attrs.get(TARGET_ATTR) {
            Some(a) => Target::from_attr(a),
            None => Ok(Target::h100()),
        }
    }

    /// Sets `body`'s module attribute to this target.
    pub fn attach(&self, body: &mut Body) {
        let root = body.root;
        body.ops[root].attrs.set(TARGET_ATTR, self.to_attr());
    }

    /// Sets the field spelled `key` (a name of [`Target::field_names`]) from its text.
    pub fn set(&mut self, key: &str, text: &str) -> Result<(), String> {
        let value = if key == "chip" {
            Value::Str(text.to_string())
        } else if let Ok(i) = text.parse::<u64>() {
            Value::Int(i)
        } else {
            Value::Float(
                text.parse::<f64>()
                    .map_err(|_| format!("target field '{key}': '{text}' is not a number"))?,
            )
        };
        self.set_value(key, value)
    }

    /// The fields' names, as `#mkc.target<...>` and [`Target::set`] spell them.
    pub fn field_names() -> &'static [&'static str] {
        &FIELDS
    }

    fn get(&self, key: &str) -> Value {
        match key {
            "chip" => Value::Str(self.chip.clone()),
            "sms" => Value::Int(self.sms as u64),
            "bandwidth" => Value::Float(self.bandwidth),
            "l2_byte_cost" => Value::Float(self.l2_byte_cost),
            "sm_flops" => Value::Float(self.sm_flops),
            "sm_matrix_flops" => Value::Float(self.sm_matrix_flops),
            "attention_flops" => Value::Float(self.attention_flops),
            "event_latency" => Value::Float(self.event_latency),
            "grid_sync" => Value::Float(self.grid_sync),
            "task_overhead" => Value::Float(self.task_overhead),
            "range_cost" => Value::Float(self.range_cost),
            "smem_per_cta" => Value::Int(self.smem_per_cta as u64),
            "registers_per_sm" => Value::Int(self.registers_per_sm as u64),
            "registers_per_thread" => Value::Int(self.registers_per_thread as u64),
            "threads_per_cta" => Value::Int(self.threads_per_cta as u64),
            _ => unreachable!("FIELDS names every field"),
        }
    }

    fn set_value(&mut self, key: &str, v: Value) -> Result<(), String> {
        let bad = |want: &str| format!("target field '{key}' must be {want}");
        let count = |v: &Value| match v {
            Value::Int(i) if *i >= 1 && *i <= u32::MAX as u64 => Ok(*i as u32),
            _ => Err(bad("a whole number from 1 to 4294967295")),
        };
        // Sizes the tiler and the scheduler make work per unit of: bounded by what a GPU
        // can have, so an absurd value is an error instead of a plan that never finishes.
        let bounded = |v: &Value, max: u64| match v {
            Value::Int(i) if *i >= 1 && *i <= max => Ok(*i as u32),
            _ => Err(bad(&format!("a whole number from 1 to {max}"))),
        };
        let rate = |v: &Value| match *v {
            Value::Int(i) if i > 0 => Ok(i as f64),
            Value::Float(f) if f > 0.0 && f.is_finite() => Ok(f),
            _ => Err(bad("a positive number")),
        };
        match key {
            "chip" => match v {
                Value::Str(s) if check_chip(&s).is_ok() => self.chip = s,
                _ => return Err(bad("a PTX target name such as sm_90a")),
            },
            "sms" => self.sms = bounded(&v, MAX_SMS)?,
            "bandwidth" => self.bandwidth = rate(&v)?,
            "l2_byte_cost" => self.l2_byte_cost = rate(&v)?,
            "sm_flops" => self.sm_flops = rate(&v)?,
            "sm_matrix_flops" => self.sm_matrix_flops = rate(&v)?,
            "attention_flops" => self.attention_flops = rate(&v)?,
            "event_latency" => self.event_latency = rate(&v)?,
            "grid_sync" => self.grid_sync = rate(&v)?,
            "task_overhead" => self.task_overhead = rate(&v)?,
            "range_cost" => self.range_cost = rate(&v)?,
            "smem_per_cta" => self.smem_per_cta = count(&v)?,
            "registers_per_sm" => self.registers_per_sm = count(&v)?,
            "registers_per_thread" => self.registers_per_thread = count(&v)?,
            "threads_per_cta" => self.threads_per_cta = bounded(&v, 1024)?,
            _ => {
                return Err(format!(
                    "unknown target field '{key}'; the fields are {}",
                    FIELDS.join(", ")
                ))
            }
        }
        Ok(())
    }

    /// `#mkc.target<"h100">`, with the fields that differ from the preset.
    pub fn to_attr(&self) -> Attr {
        let base = Target::preset(&self.preset).unwrap_or_else(|_| Target::h100());
        let mut body = format!("target<\"{}\"", self.preset);
        for key in FIELDS {
            let v = self.get(key);
            if v != base.get(key) {
                let _ = match v {
                    Value::Str(s) => write!(body, ", {key} = \"{s}\""),
                    Value::Int(i) => write!(body, ", {key} = {i}"),
                    Value::Float(f) => write!(body, ", {key} = {f:e}"),
                };
            }
        }
        body.push('>');
        Attr::Opaque {
            dialect: "mkc".into(),
            body,
        }
    }

    /// Reads `#mkc.target<"preset", field = value, ...>`.
    pub fn from_attr(a: &Attr) -> Result<Target, String> {
        let body = match a {
            Attr::Opaque { dialect, body } if dialect == "mkc" => body.as_str(),
            _ => return Err(format!("expected #mkc.target<...>, found {a}")),
        };
        let inner = body
            .strip_prefix("target<")
            .and_then(|b| b.strip_suffix('>'))
            .ok_or_else(|| format!("expected #mkc.target<\"preset\", ...>, found #mkc.{body}"))?;
        let mut items = inner.split(',').map(str::trim);
        let preset = items
            .next()
            .and_then(|p| p.strip_prefix('"')?.strip_suffix('"'))
            .ok_or_else(|| {
                format!("#mkc.{body}: the first item must be a preset name in quotes")
            })?;
        let mut t = Target::preset(preset).map_err(|e| format!("#mkc.{body}: {e}"))?;
        for item in items {
            let (key, text) = item
                .split_once('=')
                .map(|(k, v)| (k.trim(), v.trim()))
                .ok_or_else(|| format!("#mkc.{body}: expected 'field = value', found '{item}'"))?;
            let value = match text.strip_prefix('"').and_then(|s| s.strip_suffix('"')) {
                Some(s) => Value::Str(s.to_string()),
                None => match text.parse::<u64>() {
                    Ok(i) => Value::Int(i),
                    Err(_) => Value::Float(text.parse::<f64>().map_err(|_| {
                        format!("#mkc.{body}: '{text}' is not a number or a string")
                    })?),
                },
            };
            t.set_value(key, value)
                .map_err(|e| format!("#mkc.{body}: {e}"))?;
        }
        Ok(t)
    }
}

/// The most SMs a target may have (the H100 has 132): far above any GPU, low enough that
/// tiling and scheduling for it stay quick.
pub const MAX_SMS: u64 = 4096;

/// Checks a PTX target name (`sm_90a`, `sm_100a`, `sm_80`): `sm_`, a version of two or three
/// digits, and an optional feature suffix of lowercase letters. What reaches MLIR's NVVM
/// target must be one: anything else fails inside its verification.
pub fn check_chip(chip: &str) -> Result<(), String> {
    let ok = chip.strip_prefix("sm_").is_some_and(|rest| {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        (2..=3).contains(&digits) && rest[digits..].bytes().all(|b| b.is_ascii_lowercase())
    });
    if ok {
        Ok(())
    } else {
        Err(format!(
            "'{chip}' is not a PTX target name (sm_ and a version, such as sm_90a)"
        ))
    }
}

impl Default for Target {
    fn default() -> Self {
        Target::h100()
    }
}

/// A target as asked for: a preset (or the module's own target), then fields overridden by
/// their spelling in `#mkc.target<...>`. What `attach-target{preset=h200 sms=64}` and the
/// command line's `--target`, `--sms` and `--target-field` say.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct TargetSpec {
    /// `None`: start from the module's target (the H100 preset without one).
    pub preset: Option<String>,
    /// (field, value) pairs, applied in order.
    pub fields: Vec<(String, String)>,
}

impl TargetSpec {
    /// A preset with no field overridden.
    pub fn preset(name: &str) -> TargetSpec {
        TargetSpec {
            preset: Some(name.to_string()),
            fields: Vec::new(),
        }
    }

    /// The target this spec makes of `body`'s.
    pub fn resolve(&self, body: &Body) -> Result<Target, String> {
        let mut t = match &self.preset {
            Some(p) => Target::preset(p)?,
            None => Target::of(body)?,
        };
        for (k, v) in &self.fields {
            t.set(k, v)?;
        }
        Ok(t)
    }

    /// Resolves the spec against `body`'s target and attaches the result.
    pub fn apply(&self, body: &mut Body) -> Result<Target, String> {
        let t = self.resolve(body)?;
        t.attach(body);
        Ok(t)
    }

    /// The target without a module to start from (the preset, or the H100's); also how a
    /// spec is checked before anything runs.
    pub fn standalone(&self) -> Result<Target, String> {
        let mut t = match &self.preset {
            Some(p) => Target::preset(p)?,
            None => Target::h100(),
        };
        for (k, v) in &self.fields {
            t.set(k, v)?;
        }
        Ok(t)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_print_their_differences_and_parse_back() {
        let mut t = Target::h200();
        assert_eq!(t.to_attr().to_string(), "#mkc.target<\"h200\">");
        t.sms = 64;
        t.set("bandwidth", "2.5e12").unwrap();
        let text = t.to_attr().to_string();
        assert_eq!(text, "#mkc.target<\"h200\", sms = 64, bandwidth = 2.5e12>");
        assert_eq!(Target::from_attr(&t.to_attr()).unwrap(), t);
        for key in Target::field_names() {
            let mut u = Target::h100();
            u.set(key, if *key == "chip" { "sm_100a" } else { "7" })
                .unwrap();
            assert_eq!(Target::from_attr(&u.to_attr()).unwrap(), u, "{key}");
        }
    }

    #[test]
    fn bad_targets_are_clear_errors() {
        let opaque = |body: &str| Attr::Opaque {
            dialect: "mkc".into(),
            body: body.into(),
        };
        for (body, want) in [
            (
                "target<\"a100\">",
                "unknown target 'a100'; the presets are h100, h200",
            ),
            (
                "target<h100>",
                "the first item must be a preset name in quotes",
            ),
            ("target<\"h100\", sms = 0>", "'sms' must be a whole number"),
            (
                "target<\"h100\", cores = 3>",
                "unknown target field 'cores'",
            ),
            (
                "target<\"h100\", bandwidth = -1>",
                "'bandwidth' must be a positive number",
            ),
            ("target<\"h100\", sms>", "expected 'field = value'"),
            ("target<\"h100\", chip = \"\">", "a PTX target name"),
            ("target<\"h100\", chip = \"gfx90a\">", "a PTX target name"),
            ("target<\"h100\", chip = \"sm_\">", "a PTX target name"),
            // Issue 26: absurd SM counts made tiling and scheduling run away.
            (
                "target<\"h100\", sms = 1000000000>",
                "'sms' must be a whole number from 1 to 4096",
            ),
            (
                "target<\"h100\", threads_per_cta = 4096>",
                "'threads_per_cta' must be a whole number from 1 to 1024",
            ),
        ] {
            let e = Target::from_attr(&opaque(body)).unwrap_err();
            assert!(e.contains(want), "{body}: {e}");
        }
        assert!(Target::from_attr(&Attr::Bool(true)).is_err());
    }
}
