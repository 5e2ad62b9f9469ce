//! `compile --emit=tasks|schedule|schedule-svg` and `check --engine sim`: the task and
//! schedule issue's acceptance.

use super::{last_json, mkc, text, FIXTURES};
use std::path::{Path, PathBuf};

fn repo(p: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(p)
}

fn compile(args: &[&str]) -> String {
    let mut all = vec!["compile"];
    all.extend_from_slice(args);
    let o = mkc(&all, None);
    assert!(o.status.success(), "{all:?}: {}", text(&o.stderr));
    text(&o.stdout)
}

#[test]
fn sim_engine_passes_every_fixture_from_both_frontends_for_several_seeds() {
    for name in FIXTURES {
        let dir = repo("tests/fixtures").join(name);
        let has_onnx = dir.join("model.onnx").is_file();
        for onnx in [false, true].into_iter().filter(|&o| !o || has_onnx) {
            let mut args = vec![
                "check",
                dir.to_str().unwrap(),
                "--engine",
                "sim",
                "--seeds",
                "3",
            ];
            if onnx {
                args.push("--onnx");
            }
            let o = mkc(&args, None);
            assert!(
                o.status.success(),
                "{name} onnx={onnx}: {}",
                text(&o.stderr)
            );
            let err = text(&o.stderr);
            assert_eq!(err.matches("seed ").count(), 3, "{err}");
            let j = last_json(&o);
            assert_eq!(j["engine"], "sim");
            assert_eq!(j["level"], "schedule");
            assert_eq!(j["positions"], 27);
            assert!(j["argmax_agree"].as_u64().unwrap() >= 26, "{name}: {j}");
            assert!(j["max_rel_err"].as_f64().unwrap() <= 2e-2, "{name}: {j}");
        }
    }
}

#[test]
fn fine_tiles_on_few_sms_still_compute_the_right_logits() {
    // Many more tasks than the default cut makes for a tiny model, on 16 SMs: most
    // dependencies cross SMs, and every seed interleaves them differently.
    let dir = repo("tests/fixtures/llama-tiny");
    passes_on_the_simulator(
        &dir,
        "builtin.module(canonicalize,fuse,cse,dce,tile{min-tile-bytes=512},schedule)",
        4,
    );
}

/// `mkc check DIR --engine sim` with `pipeline` on 16 SMs, over `seeds` interleavings of the
/// SM queues: every position's argmax and the simulator's tolerance.
fn passes_on_the_simulator(dir: &std::path::Path, pipeline: &str, seeds: u32) {
    let seeds = seeds.to_string();
    let o = mkc(
        &[
            "check",
            dir.to_str().unwrap(),
            "--engine",
            "sim",
            "--seeds",
            &seeds,
            "--sms=16",
            "--pass-pipeline",
            pipeline,
        ],
        None,
    );
    let at = format!("{} {pipeline}", dir.display());
    assert!(o.status.success(), "{at}: {}", text(&o.stderr));
    let j = last_json(&o);
    assert_eq!(j["argmax_agree"], 27, "{at}: {j}");
    assert!(j["max_rel_err"].as_f64().unwrap() <= 2e-2, "{at}: {j}");
}

#[test]
fn split_k_mlps_compute_the_right_logits_in_any_order_of_their_adds() {
    // Every fixture's MLPs as split-K groups (`split-k`): the down projection's parts added
    // onto the residual by tasks in whatever order the seeds interleave them, on 16 SMs.
    for name in FIXTURES {
        let dir = repo("tests/fixtures").join(name);
        let pipeline = "builtin.module(canonicalize,split-attention,split-k,fuse,cse,dce,tile{min-tile-bytes=512},schedule)";
        passes_on_the_simulator(&dir, pipeline, 3);
        let tasks = compile(&[
            dir.to_str().unwrap(),
            "--emit=tasks",
            "--sms=16",
            "--pass-pipeline",
            &pipeline.replace(",schedule", ""),
        ]);
        assert!(
            tasks.contains("kind = \"mlp\"") && tasks.contains("adds = [#task.range<arena"),
            "{name}: no split-K tasks"
        );
    }
}

#[test]
fn split_k_attention_adds_the_output_projection_from_attention_tasks() {
    // Every fixture's output projection as a split-K product of attention's output
    // (`split-k{attention}`): each attention task (attention whole) or combine task
    // (attention in parts) adds its heads' lanes' part onto the residual, in whatever order
    // the seeds interleave them, on 16 SMs.
    for (name, parts) in FIXTURES.iter().flat_map(|n| [(n, "{parts=1}"), (n, "")]) {
        let dir = repo("tests/fixtures").join(name);
        let passes = format!(
            "canonicalize,split-attention{parts},split-k{{mlp=false attention=true}},fuse,cse,dce"
        );
        let pipeline = format!("builtin.module({passes},tile{{min-tile-bytes=512}},schedule)");
        passes_on_the_simulator(&dir, &pipeline, 3);
        let tasks = compile(&[
            dir.to_str().unwrap(),
            "--emit=tasks",
            "--sms=16",
            "--pass-pipeline",
            &pipeline.replace(",schedule", ""),
        ]);
        let kind = if parts.is_empty() {
            "kind = \"attention_combine_proj\""
        } else {
            "kind = \"attention\""
        };
        let adding = tasks
            .lines()
            .filter(|l| l.contains(kind) && l.contains("adds = [#task.range<arena"))
            .count();
        assert!(
            adding > 0,
            "{name} {parts}: no {kind} task adds onto the residual"
        );
        // The output projection has no group of its own left: a layer's one projection
        // group is its down projection's.
        let groups = |p: &str| {
            let fused = compile(&[dir.to_str().unwrap(), "--emit=fused", "--pass-pipeline", p]);
            fused.matches("kind = \"proj_residual\"}").count()
        };
        let plain = format!("builtin.module(canonicalize,split-attention{parts},fuse,cse,dce)");
        assert_eq!(
            2 * groups(&format!("builtin.module({passes})")),
            groups(&plain),
            "{name} {parts}"
        );
    }
    let dir = repo("tests/fixtures/llama-tiny");
    // Block-quantized projections stay as they are, and the compile says so.
    for (quantize, rewritten) in [(Some("q4_0"), false), (None, true)] {
        let mut args = vec![
            "compile",
            dir.to_str().unwrap(),
            "--split-k",
            "attention",
            "--emit=fused",
        ];
        args.extend(quantize.iter().flat_map(|q| ["--quantize", q]));
        let o = mkc(&args, None);
        assert!(o.status.success(), "{}", text(&o.stderr));
        assert_eq!(
            text(&o.stdout).contains("tg.matmul_acc"),
            rewritten,
            "{quantize:?}"
        );
        assert_eq!(
            text(&o.stderr).contains("--split-k attention rewrote no projection"),
            !rewritten,
            "{quantize:?}: {}",
            text(&o.stderr)
        );
    }
}

#[test]
fn split_k_both_adds_each_layers_two_projections_in_three_phases() {
    // Both projections split (`split-k{attention mlp}`, `--split-k both`): the down
    // projection's sum is onto the output projection's (attention's or the combine's tasks
    // add onto both), and each layer after the first starts its sums from a copy of its
    // input that its q/k/v tasks write: no `proj_residual` group is left, and the logits
    // stay right in whatever order the seeds interleave the adds, on 16 SMs.
    for (name, parts) in ["llama-tiny", "qwen3-tiny"]
        .iter()
        .flat_map(|n| [(n, "{parts=1}"), (n, "")])
    {
        let dir = repo("tests/fixtures").join(name);
        let passes = format!(
            "canonicalize,split-attention{parts},split-k{{attention=true mlp=true}},fuse,cse,dce"
        );
        let pipeline = format!("builtin.module({passes},tile{{min-tile-bytes=512}},schedule)");
        passes_on_the_simulator(&dir, &pipeline, 3);
        let fused = compile(&[
            dir.to_str().unwrap(),
            "--emit=fused",
            "--pass-pipeline",
            &format!("builtin.module({passes})"),
        ]);
        assert!(!fused.contains("proj_residual"), "{name} {parts}");
        // The copies: one a layer but the first, in the group with the layer's q/k/v.
        let layers = fused.matches("kind = \"mlp\"").count();
        let copies = fused
            .split("\"fused.group\"")
            .filter(|g| g.contains("kind = \"qkv_rope\"") || g.contains("kind = \"qkv\""))
            .filter(|g| g.contains("\"tg.cast\"") && g.contains("\"tg.rms_norm\""))
            .count();
        assert!(layers >= 2, "{name}: {layers} layers");
        assert_eq!(copies, layers - 1, "{name} {parts}: {fused}");
    }
    // The CLI's spelling, on the three programs (qwen3-tiny with `--k-row` too, at a tenth
    // of the bandwidth so that the cache update runs after attention).
    let dir = repo("tests/fixtures/qwen3-tiny");
    let o = mkc(
        &[
            "compile",
            dir.to_str().unwrap(),
            "--split-k",
            "both",
            "--k-row",
            "--bandwidth",
            "100",
            "--emit=fused",
        ],
        None,
    );
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert!(!text(&o.stdout).contains("proj_residual"));
}

#[test]
fn k_row_attention_normalises_its_own_k_row_and_the_cache_update_waits_for_it() {
    // `--k-row` (`fuse{k-row}`): where the K row is normalised per head (qwen3-tiny), each
    // attention task computes it (and its queries' norm and rope) itself, in whatever order
    // the seeds interleave the tasks, on 16 SMs. (qwen3-tiny's projections are so small that
    // the cost model keeps the K row's own norm and cache update in the q/k/v group.)
    let dir = repo("tests/fixtures/qwen3-tiny");
    for parts in ["{parts=1}", ""] {
        let pipeline = format!("builtin.module(canonicalize,split-attention{parts},fuse{{k-row=true}},cse,dce,tile{{min-tile-bytes=512}},schedule)");
        passes_on_the_simulator(&dir, &pipeline, 3);
    }
    // At a tenth of the bandwidth the cost model keeps them out, as on Qwen3-0.6B: the cache
    // update is a group after attention, which reads the cache's old rows meanwhile.
    let d = dir.to_str().unwrap();
    let slow = ["--bandwidth", "100"];
    let fused = compile(&[d, "--k-row", "--emit=fused", slow[0], slow[1]]);
    let at = |k: &str| fused.find(&format!("{{kind = \"{k}\"}}")).unwrap();
    assert!(at("qkv_rope") < at("attention") && at("attention") < at("rope"));
    for parts in ["{parts=1}", ""] {
        let pipeline = format!("builtin.module(canonicalize,split-attention{parts},fuse{{k-row=true}},cse,dce,tile,schedule)");
        let o = mkc(
            &[
                "check",
                d,
                "--engine",
                "sim",
                "--seeds",
                "3",
                "--sms=16",
                slow[0],
                slow[1],
                "--pass-pipeline",
                &pipeline,
            ],
            None,
        );
        assert!(o.status.success(), "{pipeline}: {}", text(&o.stderr));
        let j = last_json(&o);
        assert_eq!(j["argmax_agree"], 27, "{pipeline}: {j}");
        assert!(
            j["max_rel_err"].as_f64().unwrap() <= 2e-2,
            "{pipeline}: {j}"
        );
    }
    // The interpreter, on the fused IR: the K row apart is exactly the appended cache.
    let o = mkc(
        &[
            "check",
            dir.to_str().unwrap(),
            "--pass-pipeline",
            "builtin.module(canonicalize,split-attention,fuse{k-row=true},cse,dce)",
        ],
        None,
    );
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert!(last_json(&o)["max_rel_err"].as_f64().unwrap() <= 1e-5);
    // Qwen3-0.6B: no group between q/k/v and attention; the K row's norm, rope and cache
    // update (a `rope` group of one result) come after attention, nothing in the step waits
    // for them, and their tasks wait for the attention tasks that read the cache.
    let model = repo("tests/fixtures/configs/qwen3-0.6b.json");
    let m = model.to_str().unwrap();
    let fused = compile(&[m, "--k-row", "--emit=fused"]);
    let kinds: Vec<&str> = fused
        .lines()
        .filter_map(|l| l.split("{kind = \"").nth(1)?.split('"').next())
        .collect();
    let layer: Vec<&str> = kinds.iter().skip(1).take(6).copied().collect();
    assert_eq!(
        layer,
        [
            "qkv_rope",
            "attention",
            "rope",
            "attention_combine",
            "proj_residual",
            "mlp_gate_up"
        ],
        "{kinds:?}"
    );
    assert_eq!(fused.matches("tg.kv_append").count(), 2 * 28);
    let ir = compile(&[m, "--k-row", "--emit=schedule", "--ctx", "128"]);
    let field = |l: &str, k: &str| -> Vec<usize> {
        l.split(&format!("{k} = ["))
            .nth(1)
            .map(|r| r.split(']').next().unwrap_or(""))
            .unwrap_or("")
            .split(',')
            .filter_map(|x| x.trim().split(' ').next()?.parse().ok())
            .collect()
    };
    let tasks: Vec<&str> = ir.lines().filter(|l| l.contains("\"task.task\"")).collect();
    let signals = |kind: &str| -> std::collections::HashSet<usize> {
        let k = format!("kind = \"{kind}\"");
        tasks
            .iter()
            .filter(|l| l.contains(&k))
            .flat_map(|l| field(l, "signals"))
            .collect()
    };
    let attention = signals("attention");
    let rope: Vec<&&str> = tasks
        .iter()
        .filter(|l| l.contains("kind = \"rope\""))
        .collect();
    assert!(rope.len() >= 28);
    for l in rope {
        // (An event exists only for a task that waits on it.)
        assert!(
            field(l, "signals").is_empty(),
            "a task waits on a cache update: {l}"
        );
        assert!(
            field(l, "waits").iter().any(|w| attention.contains(w)),
            "{l}"
        );
    }
    // Without a per-head norm (Llama) there is nothing to take apart: the same IR, and the
    // compile says so.
    let llama = repo("tests/fixtures/llama-tiny");
    let l = llama.to_str().unwrap();
    assert_eq!(
        compile(&[l, "--k-row", "--emit=fused"]),
        compile(&[l, "--emit=fused"])
    );
    for (model, asked, noted) in [(l, true, true), (d, true, false), (l, false, false)] {
        let mut args = vec!["compile", model, "--emit=fused"];
        if asked {
            args.push("--k-row");
        }
        let o = mkc(&args, None);
        assert!(o.status.success(), "{}", text(&o.stderr));
        assert_eq!(
            text(&o.stderr).contains("--k-row took no K row apart"),
            noted,
            "{model} {asked}: {}",
            text(&o.stderr)
        );
    }
}

#[test]
fn light_groups_are_cut_finer_than_groups_that_stream_weights() {
    // Qwen3's per-head q/k norm and rope (a group without weights) is cut below
    // `min-tile-bytes` (`min-light-tile-bytes`, 1024): more than one task a layer, where
    // 16384 left one SM to normalise every head. Heavy groups keep their cuts.
    let model = repo("tests/fixtures/configs/qwen3-0.6b.json");
    let count = |ir: &str, kind: &str| {
        let k = format!("kind = \"{kind}\", ");
        ir.lines()
            .filter(|l| l.contains("\"task.task\"") && l.contains(&k))
            .count()
    };
    let fine = compile(&[model.to_str().unwrap(), "--emit=tasks"]);
    let coarse = compile(&[
        model.to_str().unwrap(),
        "--emit=tasks",
        "--min-light-tile-bytes",
        "16384",
    ]);
    // (Two results a layer: K's cache row and q.)
    assert_eq!(
        count(&coarse, "rope"),
        2 * 28,
        "one task a result and layer at 16384"
    );
    assert!(
        count(&fine, "rope") >= 4 * 28,
        "{} rope tasks",
        count(&fine, "rope")
    );
    for heavy in ["qkv_rope", "proj_residual", "mlp_gate_up", "lm_head"] {
        assert_eq!(count(&fine, heavy), count(&coarse, heavy), "{heavy}");
    }
}

/// The `task.graph` op of a printed module (the function before it is the fused IR, which
/// has its own snapshots).
fn task_graph(ir: &str) -> String {
    let at = ir.find("  \"task.graph\"").expect("a task.graph");
    ir[at..].to_string()
}

#[test]
fn task_ir_snapshots() {
    let dir = repo("tests/fixtures/llama-tiny");
    let tasks = compile(&[dir.to_str().unwrap(), "--emit=tasks"]);
    insta::assert_snapshot!("llama_tiny_tasks", task_graph(&tasks));
    let schedule = compile(&[dir.to_str().unwrap(), "--emit=schedule", "--sms=8"]);
    insta::assert_snapshot!("llama_tiny_schedule_8_sms", task_graph(&schedule));
    // The printed level parses back to itself.
    let o = mkc(&["opt", "-"], Some(&schedule));
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert_eq!(text(&o.stdout), schedule);
}

#[test]
fn llama_3_2_1b_schedules_close_to_its_floor_on_every_sm() {
    let stats = std::env::temp_dir().join(format!("mkc-task-stats-{}.json", std::process::id()));
    let sched = std::env::temp_dir().join(format!("mkc-task-sched-{}.mlir", std::process::id()));
    let start = std::time::Instant::now();
    compile(&[
        repo("tests/fixtures/configs/llama-3.2-1b.json")
            .to_str()
            .unwrap(),
        "--emit=schedule",
        "-o",
        sched.to_str().unwrap(),
        "--stats",
        stats.to_str().unwrap(),
    ]);
    eprintln!(
        "llama-3.2-1b --emit=schedule (debug build): {:?}",
        start.elapsed()
    );
    // Every group is one wave: no group has more tasks than SMs (a few left over for a second
    // wave would double its phase).
    let text = std::fs::read_to_string(&sched).unwrap();
    let mut per_group: std::collections::HashMap<&str, usize> = Default::default();
    for line in text.lines().filter(|l| l.contains("\"task.task\"")) {
        let g = line
            .split("group = ")
            .nth(1)
            .unwrap()
            .split(' ')
            .next()
            .unwrap();
        *per_group.entry(g).or_default() += 1;
    }
    assert!(per_group.len() > 80, "{} groups", per_group.len());
    assert!(
        per_group.values().all(|&n| n <= 132),
        "a group takes two waves: {per_group:?}"
    );
    let j: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&stats).unwrap()).unwrap();
    let t = &j["tasks"];
    let e = &t["estimate"];
    // The schedule loses nothing to placement: the step is the dependency chain (each
    // group's slowest task, back to back) plus one event latency (1 us) per group. (The
    // kernel streams nothing before a wait, so the model no longer hides those latencies
    // behind prefetched weights.)
    let step = e["step_ms"].as_f64().unwrap();
    let chain = e["critical_path_ms"].as_f64().unwrap() + per_group.len() as f64 * 1e-3;
    assert!(
        step >= e["floor_ms"].as_f64().unwrap() && step <= 1.02 * chain,
        "estimate {step} ms, dependency chain {chain} ms: {e}"
    );
    let busy = e["busy_us_per_sm"].as_array().unwrap();
    assert_eq!(busy.len(), 132);
    let busy: Vec<f64> = busy.iter().map(|b| b.as_f64().unwrap()).collect();
    // Every SM works through the step. (Not equally: a latency-bound phase (q/k/v,
    // attention) takes as many SMs as make it fastest, not always all of them.)
    let max = busy.iter().copied().fold(0.0, f64::max);
    assert!(
        busy.iter().all(|&b| b > 0.75 * max),
        "an SM idles: {busy:?}"
    );
    // Every layer's kinds, as tasks.
    let kinds = t["tasks_per_kind"].as_object().unwrap();
    for k in [
        "qkv_rope",
        "attention",
        "proj_residual",
        "mlp_gate_up",
        "lm_head",
    ] {
        assert!(kinds[k].as_u64().unwrap() >= 16, "{k}: {kinds:?}");
    }
    // Waits stay few: a tile waits on one counter per whole result it reads.
    let per_task = t["waits"].as_f64().unwrap() / t["tasks"].as_f64().unwrap();
    assert!(per_task < 8.0, "{per_task} waits per task");
}

#[test]
fn the_schedule_picture_has_a_bar_per_task_and_a_layer_graph() {
    let dir = repo("tests/fixtures/llama-tiny");
    let svg = std::env::temp_dir().join(format!("mkc-schedule-{}.svg", std::process::id()));
    compile(&[
        dir.to_str().unwrap(),
        "--emit=schedule-svg",
        "-o",
        svg.to_str().unwrap(),
    ]);
    let s = std::fs::read_to_string(&svg).unwrap();
    assert!(s.starts_with("<svg") && s.trim_end().ends_with("</svg>"));
    let tasks = compile(&[dir.to_str().unwrap(), "--emit=schedule"]);
    let n = tasks.matches("\"task.task\"").count();
    assert_eq!(s.matches("<title>task").count(), n);
    assert!(
        s.contains("Event graph of one layer") && s.contains("waits on:"),
        "{s}"
    );
    // Without a schedule there is nothing to draw.
    let o = mkc(
        &[
            "compile",
            dir.to_str().unwrap(),
            "--emit=schedule-svg",
            "--pass-pipeline=builtin.module(fuse,tile)",
        ],
        None,
    );
    assert!(!o.status.success());
    assert!(
        text(&o.stderr).contains("needs a pipeline that ends with 'schedule'"),
        "{}",
        text(&o.stderr)
    );
}

#[test]
fn tiling_an_unfused_function_is_a_clear_error() {
    let dir = repo("tests/fixtures/llama-tiny");
    let o = mkc(
        &[
            "compile",
            dir.to_str().unwrap(),
            "--pass-pipeline=builtin.module(tile)",
        ],
        None,
    );
    assert_eq!(o.status.code(), Some(1));
    assert!(
        text(&o.stderr).contains("run 'fuse' before 'tile'"),
        "{}",
        text(&o.stderr)
    );
}

#[test]
fn run_on_the_simulator_generates_transformers_greedy_tokens() {
    // llama-tiny's greedy continuation (transformers, float32): 121 sixteen times, well
    // clear of any tie, so bf16 KV caches keep it.
    let dir = repo("tests/fixtures/llama-tiny");
    let o = mkc(
        &[
            "run",
            dir.to_str().unwrap(),
            "--prompt-ids",
            "175,196,25,502,67,211,407,103,348,185,398",
            "--max-new-tokens",
            "16",
            "--engine",
            "sim",
        ],
        None,
    );
    assert!(o.status.success(), "{}", text(&o.stderr));
    let j = last_json(&o);
    assert_eq!(j["engine"], "sim");
    assert_eq!(j["level"], "schedule");
    assert_eq!(j["generated"], serde_json::Value::from(vec![121; 16]));
}

#[test]
fn run_takes_and_gives_text_with_a_tokenizer() {
    // llama-tiny with a word-level tokenizer.json beside it: "tN" is token N.
    let dir = std::env::temp_dir().join(format!("mkc-tok-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    for f in ["config.json", "model.safetensors"] {
        let _ = std::fs::remove_file(dir.join(f));
        std::os::unix::fs::symlink(repo("tests/fixtures/llama-tiny").join(f), dir.join(f)).unwrap();
    }
    let vocab: serde_json::Map<String, serde_json::Value> = (0..512)
        .map(|i| (format!("t{i}"), serde_json::Value::from(i)))
        .collect();
    let tokenizer = serde_json::json!({
        "version": "1.0", "truncation": null, "padding": null, "added_tokens": [],
        "normalizer": null, "pre_tokenizer": {"type": "Whitespace"}, "post_processor": null,
        "decoder": null, "model": {"type": "WordLevel", "vocab": vocab, "unk_token": "t0"}
    });
    std::fs::write(dir.join("tokenizer.json"), tokenizer.to_string()).unwrap();
    let o = mkc(
        &[
            "run",
            dir.to_str().unwrap(),
            "--prompt",
            "t175 t196 t25 t502 t67 t211 t407 t103 t348 t185 t398",
            "--max-new-tokens",
            "4",
            "--engine",
            "sim",
        ],
        None,
    );
    assert!(o.status.success(), "{}", text(&o.stderr));
    let j = last_json(&o);
    assert_eq!(j["prompt"], 11);
    assert_eq!(j["text"], "t121 t121 t121 t121");
    // No tokenizer: --prompt is refused with the reason.
    let o = mkc(
        &[
            "run",
            repo("tests/fixtures/llama-tiny").to_str().unwrap(),
            "--prompt",
            "hi",
        ],
        None,
    );
    assert_eq!(o.status.code(), Some(1));
    assert!(
        text(&o.stderr).contains("--prompt needs a tokenizer:"),
        "{}",
        text(&o.stderr)
    );
}

/// llama-tiny with a word-level tokenizer.json ("tN" is token N) in a fresh folder.
fn llama_tiny_with_tokenizer(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("mkc-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    for f in ["config.json", "model.safetensors"] {
        std::os::unix::fs::symlink(repo("tests/fixtures/llama-tiny").join(f), dir.join(f)).unwrap();
    }
    let vocab: serde_json::Map<String, serde_json::Value> = (0..512)
        .map(|i| (format!("t{i}"), serde_json::Value::from(i)))
        .collect();
    let tokenizer = serde_json::json!({
        "version": "1.0", "truncation": null, "padding": null, "added_tokens": [],
        "normalizer": null, "pre_tokenizer": {"type": "Whitespace"}, "post_processor": null,
        "decoder": null, "model": {"type": "WordLevel", "vocab": vocab, "unk_token": "t0"}
    });
    std::fs::write(dir.join("tokenizer.json"), tokenizer.to_string()).unwrap();
    dir
}

#[test]
fn run_stops_at_eos_and_stop_strings_and_samples_reproducibly() {
    // Greedy llama-tiny continues this prompt with t121 t121 ...
    let dir = llama_tiny_with_tokenizer("stop");
    let prompt = "t175 t196 t25 t502 t67 t211 t407 t103 t348 t185 t398";
    let run = |extra: &[&str]| {
        let mut args = vec![
            "run",
            dir.to_str().unwrap(),
            "--engine",
            "interp",
            "--prompt",
            prompt,
        ];
        args.extend_from_slice(extra);
        let o = mkc(&args, None);
        assert!(o.status.success(), "{extra:?}: {}", text(&o.stderr));
        (last_json(&o), text(&o.stdout))
    };
    let (j, _) = run(&["--max-new-tokens", "3"]);
    assert_eq!(j["generated"], serde_json::json!([121, 121, 121]));
    assert_eq!(j["stop_reason"], "max_new_tokens");
    // The text stops before the stop string (which spans two tokens).
    let (j, out) = run(&["--max-new-tokens", "8", "--stop", "121 t12"]);
    assert_eq!(j["generated"], serde_json::json!([121, 121]));
    assert_eq!(j["stop_reason"], "stop_string");
    assert_eq!(j["text"], "t");
    assert!(out.starts_with("t\n{"), "{out}");
    // generation_config.json's eos_token_id ends the generation; the EOS is not text.
    std::fs::write(
        dir.join("generation_config.json"),
        r#"{"eos_token_id": [7, 121]}"#,
    )
    .unwrap();
    let (j, _) = run(&["--max-new-tokens", "8"]);
    assert_eq!(j["generated"], serde_json::json!([121]));
    assert_eq!(j["stop_reason"], "eos");
    assert_eq!(j["text"], "");
    // --ignore-eos: never 121 (nor 7), eight tokens.
    let (j, _) = run(&["--max-new-tokens", "8", "--ignore-eos"]);
    let g = j["generated"].as_array().unwrap();
    assert_eq!(g.len(), 8);
    assert!(g.iter().all(|t| t != 121 && t != 7), "{g:?}");
    std::fs::remove_file(dir.join("generation_config.json")).unwrap();
    // Sampling: the same seed gives the same tokens; the JSON line stays last.
    let sampled = [
        "--max-new-tokens",
        "6",
        "--temperature",
        "2",
        "--top-k",
        "20",
        "--top-p",
        "0.9",
        "--seed",
        "5",
    ];
    let (a, _) = run(&sampled);
    let (b, _) = run(&sampled);
    assert_eq!(a["generated"], b["generated"]);
    assert_eq!(a["text"], b["text"]);
    // Bad options are refused with their names.
    let o = mkc(
        &[
            "run",
            dir.to_str().unwrap(),
            "--prompt",
            "t1",
            "--top-p",
            "0",
        ],
        None,
    );
    assert_eq!(o.status.code(), Some(1));
    assert!(
        text(&o.stderr).contains("--top-p must be in (0, 1]"),
        "{}",
        text(&o.stderr)
    );
    let o = mkc(
        &[
            "run",
            repo("tests/fixtures/llama-tiny").to_str().unwrap(),
            "--prompt-ids",
            "1",
            "--stop",
            "x",
        ],
        None,
    );
    assert_eq!(o.status.code(), Some(1));
    assert!(
        text(&o.stderr).contains("--stop needs a tokenizer"),
        "{}",
        text(&o.stderr)
    );
    // A prompt beyond the model's context: llama-tiny's is 2048.
    let ids = vec!["1"; 2040].join(",");
    let o = mkc(
        &[
            "run",
            repo("tests/fixtures/llama-tiny").to_str().unwrap(),
            "--prompt-ids",
            &ids,
            "--max-new-tokens",
            "16",
        ],
        None,
    );
    assert_eq!(o.status.code(), Some(1));
    assert!(
        text(&o.stderr).contains("lower --max-new-tokens to 8 at most"),
        "{}",
        text(&o.stderr)
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn tune_fits_a_trace_and_the_schedule_uses_it() {
    // A trace as `bench --trace` writes it: two kinds, work time = 2 us + bytes / 10 GB/s.
    let mut events = Vec::new();
    for (kind, bytes) in [
        ("mlp_gate_up", 1e4),
        ("mlp_gate_up", 5e4),
        ("qkv_rope", 2e4),
    ] {
        let dur_us = 2.0 + bytes / 1e10 * 1e6;
        events.push(
            serde_json::json!({"name": kind, "cat": "task", "ph": "X", "pid": 0,
            "tid": 0, "ts": 0.0, "dur": dur_us, "args": {"bytes": bytes}}),
        );
        events.push(
            serde_json::json!({"name": "wait", "cat": "wait", "ph": "X", "pid": 0,
            "tid": 0, "ts": 0.0, "dur": 1.0}),
        );
    }
    let dir = std::env::temp_dir().join(format!("mkc-tune-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let trace = dir.join("trace.json");
    std::fs::write(
        &trace,
        serde_json::json!({"traceEvents": events}).to_string(),
    )
    .unwrap();
    let cost = dir.join("cost.json");
    let o = mkc(
        &[
            "tune",
            trace.to_str().unwrap(),
            "-o",
            cost.to_str().unwrap(),
        ],
        None,
    );
    assert!(o.status.success(), "{}", text(&o.stderr));
    let c: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&cost).unwrap()).unwrap();
    let mlp = &c["kinds"]["mlp_gate_up"];
    assert!(
        (mlp["fixed_us"].as_f64().unwrap() - 2.0).abs() < 1e-6,
        "{c}"
    );
    assert!(
        (mlp["gbps_per_sm"].as_f64().unwrap() - 10.0).abs() < 1e-6,
        "{c}"
    );
    assert_eq!(c["kinds"]["qkv_rope"]["tasks"], 1);
    // The schedule's estimate of llama-tiny, without and with the measured costs.
    let model = repo("tests/fixtures/llama-tiny");
    let estimate = |extra: &[&str]| {
        let stats = dir.join("s.json");
        let mut args = vec![
            model.to_str().unwrap(),
            "--emit=schedule",
            "-o",
            "/dev/null",
            "--stats",
            stats.to_str().unwrap(),
        ];
        args.extend_from_slice(extra);
        compile(&args);
        let j: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&stats).unwrap()).unwrap();
        j["tasks"]["estimate"]["step_ms"].as_f64().unwrap()
    };
    let plain = estimate(&[]);
    let tuned = estimate(&["--cost-model", cost.to_str().unwrap()]);
    assert!(tuned > plain, "{tuned} vs {plain}");
    // A broken cost model is a clear error.
    std::fs::write(&cost, "{\"kinds\": {\"x\": {\"fixed_us\": -1}}}").unwrap();
    let o = mkc(
        &[
            "compile",
            model.to_str().unwrap(),
            "--emit=schedule",
            "--cost-model",
            cost.to_str().unwrap(),
        ],
        None,
    );
    assert_eq!(o.status.code(), Some(1));
    assert!(
        text(&o.stderr).contains("needs a number"),
        "{}",
        text(&o.stderr)
    );
}

#[test]
fn tune_predicts_the_measured_step_within_ten_percent() {
    // Traces of Llama-3.2-1B and SmolLM2-135M at position 128 on an H100 (`mkc bench
    // --trace`, the `short/` program, whose tasks `--attention-parts 1` schedules the same):
    // the estimate of that schedule under the cost model `tune` fits to the trace (with the
    // event latency and task switch measured in it) is within 10% of the measured step
    // (issue 23). Pricing each task at its kind's mean time put the q4_0 one 17% short.
    let dir = std::env::temp_dir().join(format!("mkc-tune-step-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let llama = repo("tests/fixtures/configs/llama-3.2-1b.json");
    let smollm2 = repo("../shared/configs/smollm2-135m.json");
    let qwen3 = repo("tests/fixtures/configs/qwen3-0.6b.json");
    let cost = dir.join("cost.json");
    let mut schedules = Vec::new();
    // (SmolLM2's thin layers run a task after another on most SMs: without the task switch
    // the estimate was 10.0% short; with it 0.9%.)
    for (i, (trace, model, flags, bound)) in [
        (
            "docs/perf/2026-12-06-s18/call2-trace-1b-q4_0-i8.json.gz",
            &llama,
            &["--quantize", "q4_0", "--int8-activations"][..],
            0.10,
        ),
        (
            "docs/perf/2026-11-26-s12/trace-bench-llama-3.2-1b-d-128-call3.json.gz",
            &llama,
            &[][..],
            0.10,
        ),
        (
            "docs/perf/2026-12-07-s27/trace-bs-h.json.gz",
            &smollm2,
            &[][..],
            0.05,
        ),
        // Both projections adding onto the residual: one price for every task of a kind
        // put the estimate 13% over; drawn from the kinds' spreads, 3.2%.
        (
            "docs/perf/2026-12-07-s30/trace-bs-b.json.gz",
            &smollm2,
            &["--split-k", "both"][..],
            0.10,
        ),
        (
            "docs/perf/2026-12-07-s30/trace-q3-h.json.gz",
            &qwen3,
            &[][..],
            0.10,
        ),
    ]
    .into_iter()
    .enumerate()
    {
        // `tune` reads the first as it is kept (gzipped), the second as `bench` writes it.
        let t = if i == 0 {
            repo(trace)
        } else {
            let unzipped = std::process::Command::new("gzip")
                .args(["-dc", repo(trace).to_str().unwrap()])
                .output()
                .expect("gzip runs");
            assert!(unzipped.status.success(), "gzip -dc {trace}");
            let t = dir.join(format!("trace{i}.json"));
            std::fs::write(&t, &unzipped.stdout).unwrap();
            t
        };
        let sched = dir.join(format!("schedule{i}.mlir"));
        let mut args = vec![
            model.to_str().unwrap(),
            "--random-weights",
            "--attention-parts",
            "1",
            "--emit=schedule",
            "-o",
            sched.to_str().unwrap(),
        ];
        args.extend_from_slice(flags);
        compile(&args);
        let o = mkc(
            &[
                "tune",
                t.to_str().unwrap(),
                "-o",
                cost.to_str().unwrap(),
                "--schedule",
                sched.to_str().unwrap(),
            ],
            None,
        );
        assert!(o.status.success(), "{}", text(&o.stderr));
        let p = last_json(&o);
        let off = p["error"].as_f64().unwrap();
        assert!(off.abs() <= bound, "{trace}: {p}");
        // The event latency and the task switch, measured in the trace, are what an H100
        // shows: about 1 and 1.5 us.
        let latency = p["event_latency_us"].as_f64().unwrap();
        assert!((0.5..2.0).contains(&latency), "{trace}: {p}");
        let switch = p["task_switch_us"].as_f64().unwrap();
        assert!((0.5..3.0).contains(&switch), "{trace}: {p}");
        let c: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&cost).unwrap()).unwrap();
        assert_eq!(c["event_latency_us"].as_f64(), Some(latency), "{c}");
        assert_eq!(c["task_switch_us"].as_f64(), Some(switch), "{c}");
        // Where it misses: each kind's phases, traced and estimated.
        assert!(
            p["phases"].as_object().is_some_and(|k| !k.is_empty()),
            "{p}"
        );
        let (m, e) = (
            p["measured_ms"].as_f64().unwrap(),
            p["estimate_ms"].as_f64().unwrap(),
        );
        assert!((e / m - 1.0 - off).abs() < 1e-9, "{p}");
        schedules.push((t, sched));
    }
    // A trace of another program is a clear error, not a prediction.
    let o = mkc(
        &[
            "tune",
            schedules[1].0.to_str().unwrap(),
            "-o",
            cost.to_str().unwrap(),
            "--schedule",
            schedules[0].1.to_str().unwrap(),
        ],
        None,
    );
    assert_eq!(o.status.code(), Some(1));
    assert!(
        text(&o.stderr).contains("the trace is of another program"),
        "{}",
        text(&o.stderr)
    );
    // A file that starts as gzip but is not is an error that names it.
    let bad = dir.join("bad.json.gz");
    std::fs::write(&bad, [0x1f, 0x8b, 0, 1, 2, 3]).unwrap();
    let o = mkc(&["tune", bad.to_str().unwrap()], None);
    assert_eq!(o.status.code(), Some(1));
    let e = text(&o.stderr);
    assert!(
        e.contains("cannot decompress") && e.contains("bad.json.gz"),
        "{e}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A task's tile: its boxes, each (lo, hi) per axis.
type Tile = Vec<Vec<(i64, i64)>>;

/// The tasks of one group of a task program: (output, tile).
fn tasks_of_group(text: &str, group: usize) -> Vec<(usize, Tile)> {
    let field = |line: &str, key: &str| -> usize {
        let at = line.find(key).unwrap() + key.len();
        line[at..].split(' ').next().unwrap().parse().unwrap()
    };
    text.lines()
        .filter(|l| l.contains("\"task.task\"") && field(l, "group = ") == group)
        .map(|l| {
            let tile = l
                .split("tile = [")
                .nth(1)
                .unwrap()
                .split(']')
                .next()
                .unwrap();
            let boxes = tile
                .split("#task.box<")
                .skip(1)
                .map(|b| {
                    b.split('>')
                        .next()
                        .unwrap()
                        .split(", ")
                        .map(|iv| {
                            let (a, b) = iv.split_once(':').unwrap();
                            (a.parse().unwrap(), b.parse().unwrap())
                        })
                        .collect()
                })
                .collect();
            (field(l, "output = "), boxes)
        })
        .collect()
}

#[test]
fn attention_tiles_keep_to_one_head_and_head_norms_are_not_recomputed() {
    // Llama-3.2-1B: group 2 is layer 0's attention (32 heads of 64 lanes, flat): a tile
    // that straddled two heads would compute both heads' scores.
    let text = compile(&[
        repo("tests/fixtures/configs/llama-3.2-1b.json")
            .to_str()
            .unwrap(),
        "--emit=tasks",
    ]);
    let attention = tasks_of_group(&text, 2);
    assert!(attention.len() >= 32, "{} attention tasks", attention.len());
    for (_, boxes) in &attention {
        for b in boxes {
            let (lo, hi) = b[0];
            assert_eq!(
                lo / 64,
                (hi - 1) / 64,
                "a tile straddles two heads: {boxes:?}"
            );
        }
    }
    // Qwen3-0.6B: q and k are normed per head (128 lanes) before rope. Fused with their
    // projections, a task would need a whole head's weights (one task per head: 8 for k);
    // `fuse` keeps the norms out, in a group of their own after the projections, so the
    // projections split finely and every norm task holds whole heads.
    let text = compile(&[
        repo("tests/fixtures/configs/qwen3-0.6b.json")
            .to_str()
            .unwrap(),
        "--emit=tasks",
    ]);
    let k = tasks_of_group(&text, 1)
        .into_iter()
        .filter(|(out, _)| *out == 1)
        .count();
    assert!(k >= 16, "{k} tasks for k's projection");
    let norms = tasks_of_group(&text, 2);
    assert!(!norms.is_empty());
    for (_, boxes) in &norms {
        for b in boxes {
            let (lo, hi) = *b.last().unwrap();
            assert!(
                lo % 128 == 0 && hi % 128 == 0,
                "a norm task cuts a head: {boxes:?}"
            );
        }
    }
}

/// Every combine task of every layer runs on the last signal of its heads' parts: none is
/// left in a queue by a wait on memory reuse (the memory plan keeps the combine's output
/// off what the parts' step reads; the last layer's once landed on q's bytes).
#[test]
fn every_attention_combine_runs_on_the_last_signal_of_its_parts() {
    for config in ["llama-3.2-1b", "qwen3-0.6b"] {
        let path = repo(&format!("tests/fixtures/configs/{config}.json"));
        let ir = compile(&[path.to_str().unwrap(), "--emit=schedule"]);
        let combines: Vec<&str> = ir
            .lines()
            .filter(|l| l.contains("\"task.task\"") && l.contains("kind = \"attention_combine\""))
            .collect();
        let layers = if config == "qwen3-0.6b" { 28 } else { 16 };
        assert!(combines.len() >= 2 * layers, "{config}: {}", combines.len());
        for c in &combines {
            assert!(
                c.contains("on_last_signal = true") && !c.contains("sm = "),
                "{config}: {c}"
            );
        }
    }
}

/// No attention task runs on a last signal, however few bytes its estimate (made for
/// `ctx` positions) moves: Llama-3.2-1B's KV-head tiles (16 parts) estimate 4.6 KB, but
/// at 2047 positions each takes 7 us, and those with one wait ran stacked behind the
/// q/k/v task that signalled last (GPU: 1.338 ms a step against 1.232 without).
#[test]
fn attention_tasks_never_run_on_a_last_signal() {
    let path = repo("tests/fixtures/configs/llama-3.2-1b.json");
    let ir = compile(&[
        path.to_str().unwrap(),
        "--emit=schedule",
        "--attention-parts",
        "16",
    ]);
    let attention = waits_of_kind(&ir, "attention");
    assert_eq!(
        attention.len(),
        16 * 16 * 8,
        "16 layers of 16 parts of 8 KV heads"
    );
    assert!(attention.iter().all(|&(_, l)| !l));
    // Some have one wait and fall under the small-task rule's bytes: the rule would take
    // them but for what they compute.
    assert!(attention.iter().any(|&(w, _)| w == 1));
    // The combine still runs on the last signal of its parts.
    let combine = waits_of_kind(&ir, "attention_combine");
    assert!(!combine.is_empty() && combine.iter().all(|&(_, l)| l));
}

/// The waits of every task line of a printed schedule with `kind`, and whether it runs on
/// a last signal.
fn waits_of_kind(ir: &str, kind: &str) -> Vec<(usize, bool)> {
    ir.lines()
        .filter(|l| l.contains("\"task.task\"") && l.contains(&format!("kind = \"{kind}\"")))
        .map(|l| {
            let w = l
                .split("waits = [")
                .nth(1)
                .unwrap()
                .split(']')
                .next()
                .unwrap();
            (
                w.matches("i64").count(),
                l.contains("on_last_signal = true"),
            )
        })
        .collect()
}

#[test]
fn qwen3_norm_and_rope_run_on_the_last_signal_of_the_qkv_tiles_and_implied_waits_go() {
    let path = repo("tests/fixtures/configs/qwen3-0.6b.json");
    let p = path.to_str().unwrap();
    // (One task a layer and result, as tiles of at least 16384 bytes make it; by default
    // they are cut finer and queued, `light_groups_are_cut_finer_than_groups_that_stream_weights`.)
    let one = ["--min-light-tile-bytes", "16384"];
    let mut args = vec![p, "--emit=schedule", "--ctx", "128"];
    args.extend(one);
    let ir = compile(&args);
    // Two q/k norm + rope tasks a layer; all but layer 0's (whose second wait is the
    // embedding's cos/sin, not implied by the q/k/v tiles) run on the last signal.
    let rope = waits_of_kind(&ir, "rope");
    assert_eq!(rope.len(), 2 * 28);
    assert_eq!(rope.iter().filter(|(_, l)| *l).count(), 2 * 27);
    assert!(rope.iter().all(|&(w, l)| !l || w == 1));
    // Without the rule none does; without pruning, the waits are those of every hazard.
    let plain = compile(&[
        p,
        "--emit=schedule",
        "--ctx",
        "128",
        "--last-signal-bytes",
        "0",
        "--prune-waits",
        "false",
        one[0],
        one[1],
    ]);
    assert!(waits_of_kind(&plain, "rope").iter().all(|(_, l)| !l));
    let total =
        |ir: &str, kind: &str| -> usize { waits_of_kind(ir, kind).iter().map(|w| w.0).sum() };
    for kind in ["mlp_gate_up", "proj_residual", "qkv_rope"] {
        assert!(
            total(&ir, kind) < total(&plain, kind),
            "{kind}: {} against {}",
            total(&ir, kind),
            total(&plain, kind)
        );
    }
    // Attention's waits are all needed: none is implied by another (with the memory plan's
    // reuse as it is; an implied one would be pruned).
    assert_eq!(total(&ir, "attention"), total(&plain, "attention"));
    // The MLP's tiles wait on the residual alone: the memory reuse they also named was
    // waited for by the tasks that produced it.
    let mlp = waits_of_kind(&ir, "mlp_gate_up");
    assert!(mlp.iter().filter(|w| w.0 == 1).count() * 2 > mlp.len());
}
