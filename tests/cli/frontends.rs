//! `mkc import` and `mkc check` on the fixtures, and on broken copies of them.

use super::{mkc, text};
use safetensors::tensor::TensorView;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

/// A writable copy of a fixture in a fresh temp folder.
fn copy_fixture(name: &str, tag: &str) -> PathBuf {
    let dst = std::env::temp_dir().join(format!("mkc-fx-{}-{tag}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dst);
    std::fs::create_dir_all(&dst).unwrap();
    for e in std::fs::read_dir(fixture(name)).unwrap() {
        let p = e.unwrap().path();
        std::fs::copy(&p, dst.join(p.file_name().unwrap())).unwrap();
    }
    dst
}

/// Rewrites `dir/model.safetensors` after `edit` changes the (name -> (dtype, shape, bytes)) map.
fn rewrite_weights(
    dir: &Path,
    edit: impl FnOnce(&mut BTreeMap<String, (safetensors::Dtype, Vec<usize>, Vec<u8>)>),
) {
    let bytes = std::fs::read(dir.join("model.safetensors")).unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let mut map: BTreeMap<_, _> = st
        .tensors()
        .into_iter()
        .map(|(n, v)| (n, (v.dtype(), v.shape().to_vec(), v.data().to_vec())))
        .collect();
    edit(&mut map);
    let views: Vec<(String, TensorView)> = map
        .iter()
        .map(|(n, (d, s, b))| (n.clone(), TensorView::new(*d, s.clone(), b).unwrap()))
        .collect();
    let out = safetensors::serialize(views, None).unwrap();
    std::fs::write(dir.join("model.safetensors"), out).unwrap();
}

fn check_json(stdout: &str) -> serde_json::Value {
    serde_json::from_str(stdout.lines().last().expect("a JSON line")).expect("valid JSON")
}

#[test]
fn every_fixture_passes_the_interpreter_check() {
    for name in [
        "llama-tiny",
        "qwen3-tiny",
        "mistral-tiny",
        "qwen2-tiny",
        "llama3-tiny",
    ] {
        let o = mkc(
            &[
                "check",
                fixture(name).to_str().unwrap(),
                "--engine",
                "interp",
            ],
            None,
        );
        assert!(o.status.success(), "{name}: {}", text(&o.stderr));
        let j = check_json(&text(&o.stdout));
        assert_eq!(j["positions"], 27, "{name}");
        assert_eq!(j["argmax_agree"], 27, "{name}");
        assert!(j["max_rel_err"].as_f64().unwrap() <= 1e-3, "{name}: {j}");
        assert_eq!(j["engine"], "interp");
    }
}

#[test]
fn a_wrong_model_fails_the_check() {
    // Same weights, wrong rope base: the logits move and the check must say so.
    let dir = copy_fixture("llama-tiny", "perturbed");
    let cfg = std::fs::read_to_string(dir.join("config.json")).unwrap();
    std::fs::write(dir.join("config.json"), cfg.replace("500000.0", "10000.0")).unwrap();
    let o = mkc(&["check", dir.to_str().unwrap()], None);
    assert_eq!(o.status.code(), Some(1));
    let j = check_json(&text(&o.stdout));
    assert!(j["max_rel_err"].as_f64().unwrap() > 1e-2, "{j}");
    assert!(
        text(&o.stderr).contains("check failed"),
        "{}",
        text(&o.stderr)
    );
}

#[test]
fn config_only_import_of_real_models_is_fast_and_valid() {
    for cfg in [
        "llama-3.2-1b.json",
        "llama-3.1-8b.json",
        "qwen3-0.6b.json",
        "qwen3-8b.json",
    ] {
        let path = fixture("configs").join(cfg);
        let start = std::time::Instant::now();
        let o = mkc(&["import", path.to_str().unwrap()], None);
        let took = start.elapsed();
        assert!(o.status.success(), "{cfg}: {}", text(&o.stderr));
        assert!(took.as_secs_f64() < 1.0, "{cfg}: import took {took:?}");
        let ir = text(&o.stdout);
        assert!(ir.contains("func.func @decode_step("), "{cfg}");
        // Parses back and verifies.
        let o = mkc(&["opt", "-"], Some(&ir));
        assert!(o.status.success(), "{cfg}: {}", text(&o.stderr));
    }
    let ir = text(
        &mkc(
            &[
                "import",
                fixture("configs/llama-3.2-1b.json").to_str().unwrap(),
            ],
            None,
        )
        .stdout,
    );
    assert_eq!(ir.matches("\"tg.attention\"").count(), 16);
    assert!(
        ir.contains("rope_type = \"llama3\""),
        "llama3 rope scaling is carried"
    );
    assert!(ir.contains("{mkc.weight = \"model.layers.15.mlp.down_proj.weight\"}"));
    let qwen = text(
        &mkc(
            &[
                "import",
                fixture("configs/qwen3-0.6b.json").to_str().unwrap(),
            ],
            None,
        )
        .stdout,
    );
    assert_eq!(
        qwen.matches("self_attn.q_norm.weight").count(),
        28,
        "qwen3 q-norm per layer"
    );
}

fn import_error(dir: &Path) -> String {
    let o = mkc(&["import", dir.to_str().unwrap()], None);
    assert_eq!(
        o.status.code(),
        Some(1),
        "expected failure, got: {}",
        text(&o.stdout)
    );
    let err = text(&o.stderr);
    assert!(!err.contains("panicked"), "{err}");
    err
}

#[test]
fn bad_checkpoints_are_clear_errors() {
    let dir = copy_fixture("llama-tiny", "missing");
    rewrite_weights(&dir, |m| {
        m.remove("model.layers.1.mlp.up_proj.weight");
    });
    let e = import_error(&dir);
    assert!(
        e.contains("missing tensor 'model.layers.1.mlp.up_proj.weight' (shape [384, 128])"),
        "{e}"
    );

    let dir = copy_fixture("llama-tiny", "extra");
    rewrite_weights(&dir, |m| {
        let v = m["model.norm.weight"].clone();
        m.insert("model.layers.0.mystery.weight".into(), v);
    });
    let e = import_error(&dir);
    assert!(
        e.contains("unexpected tensor 'model.layers.0.mystery.weight'"),
        "{e}"
    );

    let dir = copy_fixture("llama-tiny", "shape");
    rewrite_weights(&dir, |m| {
        let (d, _, b) = m["model.layers.0.self_attn.k_proj.weight"].clone();
        m.insert(
            "model.layers.0.self_attn.k_proj.weight".into(),
            (d, vec![128, 64], b),
        );
    });
    let e = import_error(&dir);
    assert!(
        e.contains("tensor 'model.layers.0.self_attn.k_proj.weight' has shape [128, 64], but the config implies [64, 128]"),
        "{e}"
    );

    let dir = copy_fixture("llama-tiny", "dtype");
    rewrite_weights(&dir, |m| {
        let n: usize = 128;
        m.insert(
            "model.norm.weight".into(),
            (safetensors::Dtype::I16, vec![n], vec![0; 2 * n]),
        );
    });
    let e = import_error(&dir);
    assert!(
        e.contains("tensor 'model.norm.weight' has dtype i16, expected a float type"),
        "{e}"
    );

    let dir = copy_fixture("llama-tiny", "truncated");
    let bytes = std::fs::read(dir.join("model.safetensors")).unwrap();
    std::fs::write(dir.join("model.safetensors"), &bytes[..bytes.len() / 2]).unwrap();
    let e = import_error(&dir);
    assert!(e.contains("not a valid safetensors file"), "{e}");

    let dir = copy_fixture("llama-tiny", "garbage");
    std::fs::write(
        dir.join("model.safetensors"),
        b"\x05\x00\x00\x00\x00\x00\x00\x00{{{{{",
    )
    .unwrap();
    let e = import_error(&dir);
    assert!(e.contains("not a valid safetensors file"), "{e}");
}

#[test]
fn bad_configs_are_clear_errors() {
    let cases = [
        (
            r#""model_type": "llama""#,
            r#""model_type": "gpt_neox""#,
            "unsupported model_type \"gpt_neox\"",
        ),
        (
            r#""rope_type": "default""#,
            r#""rope_type": "yarn""#,
            "unsupported rope type \"yarn\"",
        ),
        (
            r#""hidden_act": "silu""#,
            r#""hidden_act": "gelu""#,
            "unsupported hidden_act \"gelu\"",
        ),
        (
            r#""num_key_value_heads": 2"#,
            r#""num_key_value_heads": 3"#,
            "not a multiple of num_key_value_heads",
        ),
        (
            r#""hidden_size": 128"#,
            r#""hidden_size": "big""#,
            "\"hidden_size\" must be a positive integer",
        ),
        (
            r#""num_hidden_layers": 2"#,
            r#""num_hidden_layers": 1099511627776"#,
            "\"num_hidden_layers\" = 1099511627776 is implausibly large",
        ),
    ];
    for (i, (from, to, want)) in cases.iter().enumerate() {
        let dir = copy_fixture("llama-tiny", &format!("cfg{i}"));
        let cfg = std::fs::read_to_string(dir.join("config.json")).unwrap();
        assert!(cfg.contains(from), "fixture changed: {from}");
        std::fs::write(dir.join("config.json"), cfg.replace(from, to)).unwrap();
        let e = import_error(&dir);
        assert!(e.contains(want), "case {i}: {e}");
        assert!(e.contains("config.json"), "the error names the file: {e}");
    }
    let o = mkc(&["import", "/nonexistent/model"], None);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        text(&o.stderr).contains("cannot read /nonexistent/model"),
        "{}",
        text(&o.stderr)
    );
}

#[test]
fn a_context_beyond_memory_is_refused_before_allocating() {
    let dir = fixture("llama-tiny");
    let o = mkc(
        &[
            "run",
            dir.to_str().unwrap(),
            "--engine",
            "interp",
            "--prompt-ids",
            "1,2",
            "--ctx",
            "1000000000000",
        ],
        None,
    );
    assert_eq!(o.status.code(), Some(1), "{}", text(&o.stderr));
    let e = text(&o.stderr);
    assert!(
        e.contains("the KV caches for a context of 1000000000000 positions need"),
        "{e}"
    );
    let o = mkc(&["check", "/nonexistent/fixture"], None);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        text(&o.stderr).contains("no reference for /nonexistent/fixture"),
        "{}",
        text(&o.stderr)
    );
}

#[test]
fn sharded_checkpoints_import_and_check() {
    // Split llama-tiny into two shards with an index; the check must still pass.
    let dir = copy_fixture("llama-tiny", "sharded");
    let bytes = std::fs::read(dir.join("model.safetensors")).unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let names: Vec<String> = st.names().into_iter().map(str::to_string).collect();
    let mut weight_map = serde_json::Map::new();
    for (k, chunk) in names.chunks(names.len().div_ceil(2)).enumerate() {
        let file = format!("model-0000{}-of-00002.safetensors", k + 1);
        let views: Vec<(String, TensorView)> = chunk
            .iter()
            .map(|n| {
                let v = st.tensor(n).unwrap();
                (
                    n.clone(),
                    TensorView::new(v.dtype(), v.shape().to_vec(), v.data()).unwrap(),
                )
            })
            .collect();
        std::fs::write(
            dir.join(&file),
            safetensors::serialize(views, None).unwrap(),
        )
        .unwrap();
        for n in chunk {
            weight_map.insert(n.clone(), serde_json::Value::String(file.clone()));
        }
    }
    std::fs::remove_file(dir.join("model.safetensors")).unwrap();
    let index = serde_json::json!({"metadata": {}, "weight_map": weight_map});
    std::fs::write(dir.join("model.safetensors.index.json"), index.to_string()).unwrap();
    let o = mkc(&["check", dir.to_str().unwrap()], None);
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert_eq!(check_json(&text(&o.stdout))["argmax_agree"], 27);
}
