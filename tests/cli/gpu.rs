//! The megakernel: its MLIR, its PTX (assembled by ptxas when the set-up could fetch it), and
//! the artifact running on a GPU (skipped, saying so, where there is none).

use super::{last_json, mkc, text};
use std::path::{Path, PathBuf};

fn repo(p: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(p)
}

use super::FIXTURES;

fn tmp(name: &str) -> PathBuf {
    std::env::temp_dir().join(format!("mkc-gpu-{}-{name}", std::process::id()))
}

/// Whether there is no GPU here; says so, as the skipped test `test`.
fn no_gpu(test: &str) -> bool {
    let probe = mkc(&["gpu-info"], None);
    if probe.status.success() {
        return false;
    }
    eprintln!("SKIPPED {test}: {}", text(&probe.stderr).trim());
    true
}

/// `mkc compile MODEL --emit=artifact FLAGS` into the scratch folder `name`.
fn compile_artifact(model: &std::path::Path, name: &str, flags: &[&str]) -> PathBuf {
    let art = tmp(name);
    let mut args = vec![
        "compile",
        model.to_str().unwrap(),
        "--emit=artifact",
        "-o",
        art.to_str().unwrap(),
    ];
    args.extend_from_slice(flags);
    let o = mkc(&args, None);
    assert!(
        o.status.success(),
        "{}: {}",
        model.display(),
        text(&o.stderr)
    );
    art
}

/// What `mkc compile MODEL --emit=EMIT FLAGS` prints.
fn compile_output(model: &Path, emit: &str, flags: &[&str]) -> String {
    let mut args = vec!["compile", model.to_str().unwrap(), emit];
    args.extend_from_slice(flags);
    let o = mkc(&args, None);
    assert!(o.status.success(), "{args:?}: {}", text(&o.stderr));
    text(&o.stdout)
}

/// An artifact's manifest.json.
fn manifest(art: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(art.join("manifest.json")).unwrap()).unwrap()
}

/// Checks a checkpoint's artifact on the device: within 1e-2 of the simulator, every
/// argmax as transformers'.
fn passes_on_gpu(fixture: &Path, art: &Path) {
    let o = check_on_gpu(fixture, art, false);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let j = last_json(&o);
    assert!(j["max_rel_err_vs_sim"].as_f64().unwrap() <= 1e-2, "{j}");
    assert_eq!(j["argmax_agree"], j["positions"], "{j}");
}

/// `mkc check FIXTURE --engine gpu --artifact ART` (with `--onnx` for the ONNX frontend).
fn check_on_gpu(fixture: &Path, art: &Path, onnx: bool) -> std::process::Output {
    let mut args = vec![
        "check",
        fixture.to_str().unwrap(),
        "--engine",
        "gpu",
        "--artifact",
        art.to_str().unwrap(),
    ];
    if onnx {
        args.push("--onnx");
    }
    mkc(&args, None)
}

/// ptxas from `scripts/setup` (or $MKC_PTXAS, or the PATH).
fn ptxas() -> Option<PathBuf> {
    let candidates = [
        std::env::var_os("MKC_PTXAS").map(PathBuf::from),
        std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache/mkc/ptxas/ptxas")),
        Some(PathBuf::from("ptxas")),
    ];
    candidates.into_iter().flatten().find(|p| {
        std::process::Command::new(p)
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success())
    })
}

/// Checks `text` against `checks`, `// CHECK:` lines as in a `tests/ir` case (mkc-filetests'
/// FileCheck); the failure names the check by `name` and line, and shows where the search
/// started.
fn file_check(name: &str, checks: &str, text: &str) {
    if let Err(e) = mkc_filetests::filecheck::check_text(name, checks, text) {
        panic!("{e}");
    }
}

/// The kernel of tests/ir/tile_mlp_residual.mlir on 4 SMs: one `gpu.func` whose CTAs walk
/// their queues of the task table, switching on each task's code; every code waits on its
/// counters (a thread per counter, acquire loads) and the tasks signal them (release adds;
/// the last signal of an event, an acquire-release add that may run a task on this SM).
const MLP_KERNEL: &str = r#"
// CHECK:      // mkc megakernel: 5 tasks on 4 SMs, 1 events, 2 codes
// CHECK-NEXT: module attributes {gpu.container_module} {
// CHECK-NEXT:   gpu.module @mkc {
// CHECK:      gpu.func @step(%b0: !llvm.ptr<1>, %b1: !llvm.ptr<1>, %b2: !llvm.ptr<1>, %b3: !llvm.ptr<1>, %b4: !llvm.ptr<1>, %tasks: !llvm.ptr<1>, %entries: !llvm.ptr<1>, %queues: !llvm.ptr<1>, %scratch: !llvm.ptr<1>, %scratch_stride: i64, %counters: !llvm.ptr<1>, %step: i32, %trace: !llvm.ptr<1>) kernel attributes {nvvm.maxntid = array<i32: 512, 1, 1>, nvvm.maxnreg = 128 : i32} {
// CHECK:      createpolicy.fractional.L2::evict_first.b64
// The SM's queue: its first entry and length, then a loop over its entries.
// CHECK:      llvm.getelementptr %queues[
// CHECK:      llvm.getelementptr %entries[
// CHECK:      scf.for %{{v[0-9]+}} = %{{v[0-9]+}} to %{{v[0-9]+}} step %{{v[0-9]+}} : i32 {
// The thread's number read afresh each pass for the loop's own use (a volatile load of a
// shared zero added), and again by each code, so that nothing derived from it is hoisted.
// CHECK-NEXT:   %zero_at_p = llvm.ptrtoint %claim
// CHECK-NEXT:   %tid_u32_p = llvm.inline_asm has_side_effects "{ .reg .u32 z; ld.volatile.shared.u32 z, [$1]; mov.u32 $0, %tid.x; add.u32 $0, $0, z; } // pass"
// CHECK:      cp.async.bulk.prefetch.L2.global
// CHECK:      scf.index_switch
// CHECK-NEXT:   case 0 {
// CHECK-NEXT:     // code 0: mlp_gate_up (group 0 result 0), like task0
// CHECK-NEXT:     %zero_at = llvm.ptrtoint %claim
// CHECK-NEXT:     %tid_u32 = llvm.inline_asm has_side_effects "{{.*}} // tid of code 0"
// CHECK:          scf.for %{{v[0-9]+}} = %tid to %{{v[0-9]+}} step %nthreads {
// CHECK-NOT:        scf.for
// CHECK:            llvm.getelementptr %counters[
// CHECK-NEXT:       scf.while : () -> () {
// CHECK-NEXT:         llvm.load %{{v[0-9]+}} atomic syncscope("device") acquire
// The norm's weight staged into shared memory, then gate and up: 16-byte evict-first weight
// loads and a warp's sum by shuffles; silu's exponential.
// CHECK:          cp.async.cg.shared.global
// CHECK:          cp.async.wait_all
// CHECK-COUNT-2:  ld.global.L1::no_allocate.L2::cache_hint.v4.u32
// CHECK:          nvvm.shfl.sync bfly
// CHECK:          ex2.approx
// CHECK:        case 1 {
// CHECK-NEXT:     // code 1: proj_residual (group 1 result 0), like task3
// CHECK-NEXT:     %zero_at = llvm.ptrtoint %claim
// CHECK-NEXT:     %tid_u32 = llvm.inline_asm has_side_effects "{{.*}} // tid of code 1"
// CHECK-NOT:      cp.async.cg.shared.global
// CHECK:          atomic syncscope("device") acquire
// CHECK:          ld.global.L1::no_allocate.L2::cache_hint.v4.u32
// CHECK:          nvvm.shfl.sync bfly
// CHECK-NOT:      cp.async.cg.shared.global
// CHECK-NOT:    case 2 {
// CHECK:        default {
// CHECK:        red.release.gpu.global.add.u32
// CHECK:        atom.acq_rel.gpu.global.add.u32
// CHECK:      gpu.return
"#;

/// The end of llama-tiny's kernel with `--argmax-parts 0`: 512 logits in 2 parts.
const SPLIT_ARGMAX_KERNEL: &str = r#"
// CHECK:       // mkc megakernel: 195 tasks on 132 SMs, 45 events, 14 codes
// CHECK-LABEL: // code 11: lm_head (group 13 result 0)
// CHECK-NOT:   arith.cmpf ogt
// CHECK-LABEL: // code 12: argmax (group 14 result 0)
// CHECK:       arith.cmpf ogt
// CHECK:       nvvm.shfl.sync bfly
// CHECK:       arith.sitofp
// CHECK-LABEL: // code 13: argmax_combine (group 15 result 0)
// CHECK:       scf.for
// CHECK:       arith.cmpf ogt
// CHECK:       arith.fptosi
// CHECK-NOT:   // code 14
"#;

/// llama-tiny's kernel on the default target: a code per kind of task and result, each with
/// what its ops need.
const LLAMA_TINY_KERNEL: &str = r#"
// CHECK:       // mkc megakernel: 194 tasks on 132 SMs, 44 events, 13 codes
// CHECK:       gpu.func @step(
// CHECK:       scf.index_switch
// The embedding row: the token's bf16 row, widened.
// CHECK-LABEL: // code 0: embed (group 0 result 0)
// CHECK:       atomic syncscope("device") acquire
// CHECK:       -> bf16
// CHECK-NEXT:  arith.extf %{{v[0-9]+}} : bf16 to f32
// The rope tables (no weights).
// CHECK-LABEL: // code 1: embed (group 0 result 1)
// CHECK-NOT:   ld.global.L1::no_allocate
// CHECK-LABEL: // code 2: embed (group 0 result 2)
// CHECK-NOT:   ld.global.L1::no_allocate
// q/k/v: the input norm (its weight staged), the product, k and v appended as bf16.
// CHECK-LABEL: // code 3: qkv_rope (group 1 result 0)
// CHECK:       cp.async.cg.shared.global
// CHECK:       cp.async.wait_all
// CHECK:       ld.global.L1::no_allocate.L2::cache_hint.v4.u32
// CHECK:       nvvm.shfl.sync bfly
// CHECK:       : bf16, !llvm.ptr<1>
// CHECK-LABEL: // code 4: qkv_rope (group 1 result 1)
// CHECK:       cp.async.cg.shared.global
// CHECK:       ld.global.L1::no_allocate.L2::cache_hint.v4.u32
// CHECK:       : bf16, !llvm.ptr<1>
// CHECK-LABEL: // code 5: qkv_rope (group 1 result 2)
// CHECK:       cp.async.cg.shared.global
// CHECK:       ld.global.L1::no_allocate.L2::cache_hint.v4.u32
// CHECK-NOT:   : bf16, !llvm.ptr<1>
// Attention in rounds (one query head a tile on 132 SMs): max, exponentials, warp sums.
// CHECK-LABEL: // code 6: attention (group 2 result 0)
// CHECK:       arith.maximumf
// CHECK:       ex2.approx
// CHECK:       nvvm.shfl.sync bfly
// CHECK-NOT:   nvvm.shfl.sync idx
// CHECK-LABEL: // code 7: attention_combine (group 3 result 0)
// CHECK:       arith.maximumf
// CHECK:       ex2.approx
// CHECK:       arith.divf
// CHECK-LABEL: // code 8: proj_residual (group 4 result 0)
// CHECK-NOT:   cp.async.cg.shared.global
// CHECK:       ld.global.L1::no_allocate.L2::cache_hint.v4.u32
// CHECK:       nvvm.shfl.sync bfly
// CHECK-NOT:   cp.async.cg.shared.global
// The gate's and the up product's rows in one loop (paired, the default), then silu.
// CHECK-LABEL: // code 9: mlp_gate_up (group 5 result 0)
// CHECK:       cp.async.cg.shared.global
// CHECK:       ld.global.L1::no_allocate.L2::cache_hint.v4.u32
// CHECK:       ld.global.L1::no_allocate.L2::cache_hint.v4.u32
// CHECK:       ex2.approx
// CHECK-NOT:   ld.global.L1::no_allocate.L2::cache_hint.v4.u32
// CHECK-LABEL: // code 10: proj_residual (group 6 result 0)
// CHECK-NOT:   cp.async.cg.shared.global
// CHECK:       ld.global.L1::no_allocate.L2::cache_hint.v4.u32
// The final norm and the LM head's product, then the argmax over its tiles' maxima.
// CHECK-LABEL: // code 11: lm_head (group 13 result 0)
// CHECK:       cp.async.cg.shared.global
// CHECK:       ld.global.L1::no_allocate.L2::cache_hint.v4.u32
// CHECK-LABEL: // code 12: lm_head (group 13 result 1)
// CHECK:       arith.cmpf ogt
// CHECK-NOT:   // code 13
// CHECK:       default {
// CHECK:       red.release.gpu.global.add.u32
// CHECK:       gpu.return
"#;

#[test]
fn the_kernel_of_a_small_program() {
    let mlir = tmp("mlp.mlir");
    let o = mkc(
        &[
            "compile",
            repo("tests/ir/tile_mlp_residual.mlir").to_str().unwrap(),
            "--emit=mlir",
            "--sms=4",
            // (No bf16 preload: the output projection's code then copies nothing into shared
            // memory, which the checks below say.)
            "--pass-pipeline=builtin.module(fuse,tile{min-tile-bytes=4096},schedule,select-kernels{preload=0})",
            "-o",
            mlir.to_str().unwrap(),
        ],
        None,
    );
    assert!(o.status.success(), "{}", text(&o.stderr));
    let k = std::fs::read_to_string(&mlir).unwrap();
    file_check("MLP_KERNEL", MLP_KERNEL, &k);
    // And the kernel of a whole small model (without the bf16 preload, as above).
    let o = mkc(
        &[
            "compile",
            repo("tests/fixtures/llama-tiny").to_str().unwrap(),
            "--emit=mlir",
            "--preload",
            "0",
        ],
        None,
    );
    assert!(o.status.success(), "{}", text(&o.stderr));
    file_check("LLAMA_TINY_KERNEL", LLAMA_TINY_KERNEL, &text(&o.stdout));
    // With the argmax split (`--argmax-parts 0`): the LM head's product, then a code for
    // its parts' winners and one for their combine.
    let split = mkc(
        &[
            "compile",
            repo("tests/fixtures/llama-tiny").to_str().unwrap(),
            "--argmax-parts",
            "0",
            "--emit=mlir",
        ],
        None,
    );
    assert!(split.status.success(), "{}", text(&split.stderr));
    file_check(
        "SPLIT_ARGMAX_KERNEL",
        SPLIT_ARGMAX_KERNEL,
        &text(&split.stdout),
    );
    // mlir-opt accepts it (the registered gpu/llvm/nvvm dialects verify it).
    let opt = ["/usr/lib/llvm-22/bin/mlir-opt", "mlir-opt-22", "mlir-opt"]
        .into_iter()
        .find(|p| {
            std::process::Command::new(p)
                .arg("--version")
                .output()
                .is_ok()
        });
    match opt {
        Some(p) => {
            let out = std::process::Command::new(p).arg(&mlir).output().unwrap();
            assert!(out.status.success(), "{}", text(&out.stderr));
        }
        None => eprintln!("SKIPPED mlir-opt check of the kernel: mlir-opt is not installed"),
    }
}

#[test]
fn scratch_lives_in_shared_memory_weights_stream_evict_first_and_kv_is_bf16() {
    let kernel = |flags: &[&str]| {
        let mut args = vec![
            "compile",
            "--emit=mlir",
            "--sms=8",
            "--pass-pipeline=builtin.module(fuse,tile,schedule)",
        ];
        let model = repo("tests/fixtures/llama-tiny");
        args.push(model.to_str().unwrap());
        args.extend(flags);
        let o = mkc(&args, None);
        assert!(o.status.success(), "{}", text(&o.stderr));
        text(&o.stdout)
    };
    // By default a task's intermediate values (the norm's output, the rows before their
    // epilogue) live in shared memory, and weights load with an L2 evict-first policy
    // without allocating in L1.
    let k = kernel(&[]);
    assert!(k.contains("llvm.getelementptr %sscr["), "no shared scratch");
    assert!(k.contains("createpolicy.fractional.L2::evict_first.b64"));
    assert!(k.contains("ld.global.L1::no_allocate.L2::cache_hint.v4.u32"));
    // The f32 KV caches are kept as bf16: the k and v rows are stored as bf16 (nothing else
    // the kernel writes is bf16), and attention reads bf16.
    assert_eq!(k.matches(": bf16, !llvm.ptr<1>").count(), 2, "{k}");
    // Both can be turned off: scratch in global memory, plain loads.
    let k = kernel(&["--smem-scratch", "0", "--weight-cache", "normal"]);
    assert!(!k.contains("llvm.getelementptr %sscr["));
    assert!(k.contains("llvm.getelementptr %scr["));
    assert!(!k.contains("L2::cache_hint"));
    // A budget too small for any value puts them all in global memory.
    let k = kernel(&["--smem-scratch", "8"]);
    assert!(!k.contains("llvm.getelementptr %sscr["));
}

#[test]
fn attention_keeps_its_scores_in_shared_memory_at_long_contexts() {
    // A task's scores and row statistics are kept for its own rows (parts and heads) only:
    // at 32768 positions Llama-3.2-1B's still fit in shared memory, where sized for every
    // part and head (4 MiB) they went to global scratch and were read back from L2.
    let model = repo("tests/fixtures/configs/llama-3.2-1b.json");
    let o = mkc(
        &[
            "compile",
            model.to_str().unwrap(),
            "--emit=mlir",
            "--ctx",
            "32768",
        ],
        None,
    );
    assert!(o.status.success(), "{}", text(&o.stderr));
    let k = text(&o.stdout);
    let attention = kernel_codes(&k)
        .into_iter()
        .filter(|c| c.contains(": attention (group"))
        .collect::<Vec<_>>();
    assert!(!attention.is_empty(), "no attention code");
    for code in attention {
        assert!(
            code.contains("llvm.getelementptr %sscr["),
            "{}",
            code_head(code)
        );
        assert_no_global_scratch(code);
    }
}

/// The task codes of a kernel's MLIR (each from its `// code N: kind ...` line on).
fn kernel_codes(mlir: &str) -> Vec<&str> {
    mlir.split("// code ").skip(1).collect()
}

fn code_head(code: &str) -> &str {
    code.lines().next().unwrap_or_default()
}

fn assert_no_global_scratch(code: &str) {
    assert!(
        !code.contains("llvm.getelementptr %scr["),
        "{}: global scratch",
        code_head(code)
    );
}

#[test]
fn attention_tasks_of_different_sizes_get_codes_of_their_own() {
    // On 3 SMs, llama-tiny's 5 parts are cut into tiles of 1 and 2 parts (all 4 heads). An
    // attention code keeps scratch for its own tile's rows: sharing one code, the bigger
    // tile would overrun the smaller's scratch.
    let dir = repo("tests/fixtures/llama-tiny");
    let flags = ["--sms", "3", "--attention-parts", "5"];
    let run = |emit: &str| {
        let mut args = vec!["compile", dir.to_str().unwrap(), emit];
        args.extend(flags);
        let o = mkc(&args, None);
        assert!(o.status.success(), "{}", text(&o.stderr));
        text(&o.stdout)
    };
    let tasks = run("--emit=tasks");
    let mut sizes: Vec<Vec<i64>> = tasks
        .split("kind = \"attention\", ")
        .skip(1)
        .filter_map(|t| t.split("tile = [#task.box<").nth(1))
        .map(|t| {
            t.split('>')
                .next()
                .unwrap()
                .split(", ")
                .map(|r| {
                    let (a, b) = r.split_once(':').unwrap();
                    b.parse::<i64>().unwrap() - a.parse::<i64>().unwrap()
                })
                .collect()
        })
        .collect();
    sizes.sort();
    sizes.dedup();
    assert_eq!(sizes.len(), 2, "{sizes:?}");
    let kernel = run("--emit=mlir");
    let codes = kernel.matches(": attention (group").count();
    assert_eq!(
        codes,
        sizes.len(),
        "attention codes against tile sizes {sizes:?}"
    );
}

#[test]
fn compile_notes_the_codes_that_keep_values_in_global_scratch() {
    let dir = repo("tests/fixtures/llama-tiny");
    let note = |flags: &[&str]| {
        let mut args = vec!["compile", dir.to_str().unwrap(), "--emit=ptx"];
        args.extend(flags);
        let o = mkc(&args, None);
        assert!(o.status.success(), "{}", text(&o.stderr));
        text(&o.stderr)
            .lines()
            .find(|l| l.contains("global scratch"))
            .map(str::to_string)
    };
    // Everything fits the shared budget by default; with none, the largest codes are named.
    assert_eq!(note(&[]), None);
    let n = note(&["--smem-scratch", "0"]).expect("a note");
    assert!(n.contains("(mlp_gate_up)") && n.contains("more"), "{n}");
}

#[test]
fn a_value_too_big_for_shared_memory_keeps_only_the_task_s_window() {
    // Llama-3.2-1B's MLP intermediates are 8192 rows each (two of 32 KiB, past the shared
    // budget with the rest); a task needs its tile's rows of them, which fit.
    let model = repo("tests/fixtures/configs/llama-3.2-1b.json");
    let o = mkc(&["compile", model.to_str().unwrap(), "--emit=mlir"], None);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let k = text(&o.stdout);
    let codes = kernel_codes(&k);
    assert!(codes.iter().any(|c| c.contains(": mlp_gate_up (group")));
    for code in codes {
        assert_no_global_scratch(code);
    }
}

#[test]
fn weights_can_be_preloaded_before_the_wait_and_events_are_release_acquire() {
    let art = tmp("preload-artifact");
    let compile = |flags: &[&str]| {
        let model = repo("tests/fixtures/configs/llama-3.2-1b.json");
        let mut args = vec![
            "compile",
            model.to_str().unwrap(),
            "--emit=artifact",
            "-o",
            art.to_str().unwrap(),
        ];
        args.extend_from_slice(flags);
        let o = mkc(&args, None);
        assert!(o.status.success(), "{flags:?}: {}", text(&o.stderr));
        let k = std::fs::read_to_string(art.join("kernel.mlir")).unwrap();
        let m: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(art.join("manifest.json")).unwrap())
                .unwrap();
        (k, m["dynamic_smem"].as_u64().unwrap())
    };
    // With --preload, each code with a matrix-vector product copies the first blocks of
    // its warps' first rows into shared memory before its wait, and waits for them before
    // the product. (By default 3 loads a lane: whole rounds of a product's loop only, so
    // K = 576 preloads one round and K = 2048 none, docs/PERF.md.)
    // (Norm weights as global loads here: their staged copies are cp.async too, below.)
    let (k, smem) = compile(&["--preload", "4", "--norm-weights", "global"]);
    let copies = k
        .matches("cp.async.cg.shared.global [$0], [$1], 16;")
        .count();
    let waits = k.matches("cp.async.wait_all;").count();
    let spins = k.matches("scf.while").count();
    // Llama: q/k/v + rope, o_proj, gate/up, down, LM head; 4 blocks a product (K = 2048
    // and 8192 are multiples of 4 x 256), each product of a code its own (gate/up: two),
    // one wait a code.
    assert!(waits >= 5, "{waits} waits for preloads");
    let gate_up = kernel_codes(&k)
        .iter()
        .filter(|c| c.contains(": mlp_gate_up (group"))
        .count();
    assert!(gate_up >= 1);
    assert_eq!(copies, 4 * (waits + gate_up));
    // The wait on events is in every code, after its preload (not once before the switch).
    assert!(spins >= waits, "{spins} spins");
    let first_copy = k.find("cp.async.cg.shared.global").unwrap();
    assert!(k[first_copy..].contains("scf.while"));
    // Events: release adds, acquire loads, no fences.
    assert!(k.contains("red.release.gpu.global.add.u32"));
    assert!(!k.contains("llvm.fence"));
    // Without the preload the buffer goes from shared memory; with fences the events have
    // them back.
    let (k0, smem0) = compile(&[
        "--preload",
        "0",
        "--event-order",
        "fences",
        "--norm-weights",
        "global",
    ]);
    assert!(!k0.contains("cp.async.cg"));
    // (Gate/up's two products take 4 slots each.)
    assert_eq!(smem - smem0, 2 * 4 * 512 * 16);
    assert!(k0.contains("llvm.fence syncscope(\"device\") release"));
    assert!(k0.contains("llvm.fence syncscope(\"device\") acquire"));
    // Deeper: 8 blocks a lane (K = 2048 and 8192 hold them).
    let (k8, smem8) = compile(&["--preload", "8", "--norm-weights", "global"]);
    // The default: no preload, the next task's first 64 KiB of weights asked into L2; the
    // RMS norms of the hidden state (q/k/v, gate/up, the LM head's) copy their 4 KiB
    // weight into shared memory as they start (256 16-byte chunks, one a thread of the
    // first 256) and wait for it before they normalize.
    let (kd, smemd) = compile(&[]);
    assert_eq!(smemd - smem0, 4096, "the staged weight's scratch");
    assert!(kd.contains("cp.async.bulk.prefetch.L2.global"));
    let staged = kd.matches("cp.async.cg.shared.global").count();
    assert!(staged >= 3, "{staged} staged norm weights");
    assert_eq!(kd.matches("cp.async.wait_all;").count(), staged);
    assert_eq!(smem8 - smem0, 2 * 8 * 512 * 16);
    assert_eq!(k8.matches("cp.async.cg.shared.global").count(), 2 * copies);
    // The down projection (K = 8192) would take 32 blocks a lane: 256 KiB of shared memory,
    // more than an SM has.
    let model = repo("tests/fixtures/configs/llama-3.2-1b.json");
    let o = mkc(
        &[
            "compile",
            model.to_str().unwrap(),
            "--emit=mlir",
            "--preload",
            "32",
        ],
        None,
    );
    assert!(!o.status.success());
    assert!(
        text(&o.stderr).contains("lower --preload"),
        "{}",
        text(&o.stderr)
    );
}

#[test]
fn every_fixture_llama_1b_and_smollm2_kernel_assembles_with_ptxas_without_spills() {
    let Some(ptxas) = ptxas() else {
        eprintln!("SKIPPED every_fixture_llama_1b_and_smollm2_kernel_assembles_with_ptxas_without_spills: no ptxas (scripts/setup fetches it)");
        return;
    };
    let models: Vec<PathBuf> = FIXTURES
        .iter()
        .flat_map(|n| {
            let d = repo("tests/fixtures").join(n);
            [d.join("model.onnx"), d]
        })
        .chain([repo("tests/fixtures/configs/llama-3.2-1b.json")])
        // Thin layers: its kernel's peak is the q/k/v code's rope, not attention.
        .chain([repo("../shared/configs/smollm2-135m.json")])
        .collect();
    // The default kernel (512 threads, attention split over the context, its combine run
    // on the last signal of its parts), the streamed one (at 256 threads: with 512 its 128
    // registers spill a few bytes), the 256-thread one with prefetches, attention whole, a
    // cache length that is not a multiple of 8 (attention's scalar paths), the combine as
    // a prologue of the output projection, and 16 parts (sms / KV heads for Llama-3.2-1B,
    // whose tiles then hold a KV head's query heads and their warps share K and V loads;
    // the fixtures' tiles keep one head at 132 SMs), and box extents as constants of the
    // codes (the ragged ones split into codes of their own, or not).
    let variants: [&[&str]; 9] = [
        &[],
        &["--stream-slots", "4", "--threads", "256"],
        &[
            "--threads",
            "256",
            "--l2-prefetch",
            "262144",
            "--prefetch",
            "next",
        ],
        &["--attention-parts", "1"],
        &["--ctx", "100"],
        &["--attention-combine", "prologue"],
        &["--attention-parts", "16"],
        &["--tile-extents", "record"],
        &["--tile-extents", "split"],
    ];
    for model in &models {
        for (v, flags) in variants.iter().enumerate() {
            let name = model
                .strip_prefix(repo("tests/fixtures"))
                .or_else(|_| model.strip_prefix(repo("../shared")))
                .unwrap()
                .to_string_lossy()
                .replace('/', "-");
            let ptx = tmp(&format!("{name}-{v}.ptx"));
            let mut args = vec![
                "compile",
                model.to_str().unwrap(),
                "--emit=ptx",
                "-o",
                ptx.to_str().unwrap(),
            ];
            args.extend_from_slice(flags);
            let o = mkc(&args, None);
            assert!(o.status.success(), "{name} {flags:?}: {}", text(&o.stderr));
            if v == 1 && !name.ends_with(".onnx") {
                // Every fixture's matrix-vector products stream (q/k/v, o, gate/up, down,
                // LM head: at least four codes). (The ONNX graphs run every position at
                // once: their products have many rows and do not stream.)
                let err = text(&o.stderr);
                let streamed: usize = err
                    .split(" streamed matvecs")
                    .next()
                    .and_then(|s| s.rsplit('(').next())
                    .and_then(|s| s.trim().parse().ok())
                    .unwrap_or(0);
                assert!(streamed >= 4, "{name}: {err}");
            }
            // Code grows with the boxes of a task's slice: a tiling whose slices need hundreds
            // made 1.4 MB of PTX that took ptxas (and the driver's JIT) a minute.
            let size = std::fs::metadata(&ptx).unwrap().len();
            assert!(size < 600_000, "{name} {flags:?}: {size} bytes of PTX");
            let out = std::process::Command::new(&ptxas)
                .args(["-arch=sm_90a", "-v", "-o", "/dev/null"])
                .arg(&ptx)
                .output()
                .unwrap();
            let log = text(&out.stderr);
            assert!(out.status.success(), "{name} {flags:?}: ptxas: {log}");
            // (Known: with KV-head tiles, Llama-3.2-1B's kernel spills, 240 bytes (288 since the
            // codes read the thread's number themselves): values live across the whole task
            // loop, stored once and reloaded as a task starts; the online attention's block
            // loop has none (nvdisasm). An option, not the default.
            // docs/PERF.md.)
            let spilled: u64 = log
                .split(" bytes spill stores")
                .next()
                .and_then(|s| s.rsplit(' ').next())
                .and_then(|s| s.parse().ok())
                .unwrap_or(u64::MAX);
            let known_spill = v == 6 && name.ends_with("llama-3.2-1b.json");
            assert!(
                known_spill || log.contains("0 bytes spill stores, 0 bytes spill loads"),
                "{name} {flags:?}: {log}"
            );
            let regs = log
                .split("Used ")
                .nth(1)
                .and_then(|s| s.split(' ').next())
                .unwrap_or("?");
            eprintln!("{name} {flags:?}: {regs} registers, {spilled} bytes spilled");
        }
    }
}

#[test]
fn the_streamed_kernel_has_a_ring_of_bulk_copies() {
    let art = tmp("streamed-artifact");
    let o = mkc(
        &[
            "compile",
            repo("tests/fixtures/llama-tiny").to_str().unwrap(),
            "--emit=artifact",
            "--stream-slots",
            "3",
            "--slot-bytes",
            "8192",
            "--smem-scratch",
            "0",
            "-o",
            art.to_str().unwrap(),
        ],
        None,
    );
    assert!(o.status.success(), "{}", text(&o.stderr));
    let k = std::fs::read_to_string(art.join("kernel.mlir")).unwrap();
    // The ring: an mbarrier per slot, bulk copies completing on them, waits by parity, the
    // slots in dynamic shared memory (after the static: an external global; no scratch
    // shares it here).
    for needle in [
        "mbarrier.init.shared::cta.b64",
        "cp.async.bulk.shared::cluster.global.mbarrier::complete_tx::bytes",
        "mbarrier.try_wait.parity.shared::cta.b64",
        "llvm.mlir.global external @dsmem()",
        "!llvm.array<3 x i64>",
    ] {
        assert!(k.contains(needle), "no {needle}");
    }
    let ptx = std::fs::read_to_string(art.join("kernel.ptx")).unwrap();
    assert!(
        ptx.contains(".extern .shared .align 128 .b8 dsmem[]"),
        "{ptx}"
    );
    // The launcher gives the kernel its slots as dynamic shared memory.
    let m: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(art.join("manifest.json")).unwrap()).unwrap();
    assert_eq!(m["dynamic_smem"], 3 * 8192);
    // A slot too small for any weight row streams nothing (and asks for no shared memory).
    let o = mkc(
        &[
            "compile",
            repo("tests/fixtures/llama-tiny").to_str().unwrap(),
            "--emit=artifact",
            "--stream-slots",
            "2",
            "--slot-bytes",
            "128",
            "--smem-scratch",
            "0",
            "--preload",
            "0",
            "-o",
            art.to_str().unwrap(),
        ],
        None,
    );
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert!(text(&o.stderr).contains("(0 streamed matvecs)"));
    let m: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(art.join("manifest.json")).unwrap()).unwrap();
    assert_eq!(m["dynamic_smem"], 0);
    // Bad kernel flags are refused with the reason: threads per CTA, the rows a warp
    // streams at once, and the ring's slots.
    let model = repo("tests/fixtures/llama-tiny");
    let bad: [(&[&str], &str); 6] = [
        (&["--threads", "100"], "multiple of 32"),
        (&["--matvec-rows", "3"], "1 or 2 weight rows"),
        (&["--matvec-unroll", "3"], "1, 2, 4 or 8 loads"),
        (&["--attention-lanes", "16"], "1, 2, 4 or 8 lanes"),
        (
            &["--stream-slots", "4", "--slot-bytes", "1000"],
            "multiple of 16 bytes",
        ),
        (
            &["--stream-slots", "8", "--slot-bytes", "65536"],
            "does not fit",
        ),
    ];
    for (flags, why) in bad {
        let mut args = vec!["compile", model.to_str().unwrap(), "--emit=mlir"];
        args.extend_from_slice(flags);
        let o = mkc(&args, None);
        assert!(!o.status.success(), "{flags:?}");
        assert!(
            text(&o.stderr).contains(why),
            "{flags:?}: {}",
            text(&o.stderr)
        );
    }
}

#[test]
fn gpu_every_fixture_passes_on_the_device() {
    if no_gpu("gpu_every_fixture_passes_on_the_device") {
        return;
    }
    for name in FIXTURES {
        let dir = repo("tests/fixtures").join(name);
        // Both frontends: the decode step from the checkpoint, the full-sequence forward
        // from model.onnx.
        for onnx in [false, true] {
            let model = if onnx {
                dir.join("model.onnx")
            } else {
                dir.clone()
            };
            // The checkpoint's artifact switches from its short steps' program (attention
            // unsplit) to the main one at position 8, and to its long steps' program (tiles
            // of a KV head's query heads) at 16, within the fixture's 27.
            let flags: &[&str] = if onnx {
                &[]
            } else {
                &["--short-steps", "8", "--long-steps", "16"]
            };
            let art = compile_artifact(&model, &format!("{name}-{onnx}-artifact"), flags);
            let o = check_on_gpu(&dir, &art, onnx);
            assert!(
                o.status.success(),
                "{name} onnx={onnx}: {}",
                text(&o.stderr)
            );
            let j = last_json(&o);
            assert!(
                j["max_rel_err_vs_sim"].as_f64().unwrap() <= 1e-2,
                "{name}: {j}"
            );
        }
    }
}

/// `--tile-extents record` (every box bound a word of the task's record, the default before
/// `constant`) and `split` (and a code per set of extents where they differ) compute what
/// the simulator does, on every fixture's three programs.
#[test]
fn gpu_other_box_extents_pass_on_the_device() {
    if no_gpu("gpu_other_box_extents_pass_on_the_device") {
        return;
    }
    for extents in ["record", "split"] {
        fixtures_match_the_simulator_on_gpu(
            &format!("{extents}-extents"),
            &["--tile-extents", extents],
        );
    }
}

/// Every fixture compiled with `flags` (and its three programs: short below 8 positions,
/// long from 16) passes `mkc check --engine gpu`, within 1e-2 of the simulator.
fn fixtures_match_the_simulator_on_gpu(label: &str, flags: &[&str]) {
    for name in FIXTURES {
        let dir = repo("tests/fixtures").join(name);
        let mut all = vec!["--short-steps", "8", "--long-steps", "16"];
        all.extend_from_slice(flags);
        let art = compile_artifact(&dir, &format!("{name}-{label}"), &all);
        let o = check_on_gpu(&dir, &art, false);
        assert!(o.status.success(), "{name} {flags:?}: {}", text(&o.stderr));
        let j = last_json(&o);
        assert!(
            j["max_rel_err_vs_sim"].as_f64().unwrap() <= 1e-2,
            "{name} {flags:?}: {j}"
        );
    }
}

/// `--split-k` (each MLP's down projection added onto the residual by its gate/up tasks, in
/// any order, by 16-byte reductions), with and without `--preload-split-k 4`, computes what
/// the simulator does, on every fixture's three programs; and its kernel has the reductions
/// (checked without a GPU too).
#[test]
fn gpu_split_k_mlps_pass_on_the_device() {
    let llama = repo("tests/fixtures/llama-tiny");
    let split_ptx = |flags: &[&str]| {
        let mut args = vec![
            "compile",
            llama.to_str().unwrap(),
            "--emit=ptx",
            "--split-k",
        ];
        args.extend_from_slice(flags);
        let o = mkc(&args, None);
        assert!(o.status.success(), "{}", text(&o.stderr));
        text(&o.stdout)
    };
    let ptx = split_ptx(&[]);
    // 16-byte reductions onto the sum, which need PTX 8.1: the kernel asks for it.
    assert!(
        ptx.contains("red.relaxed.gpu.global.add.v4.f32"),
        "no 16-byte reductions onto global memory in the split-K kernel"
    );
    assert!(
        ptx.contains(".version 8.1"),
        "the split-K kernel is not PTX 8.1"
    );
    // A float atomic add on shared memory is a compare-and-swap loop on sm_90 (4.9 us of a
    // SmolLM2 mlp task's 6.7): the thread groups' parts meet by plain stores instead.
    assert!(
        !ptx.contains("atom.shared.add.f32"),
        "the split-K kernel adds onto shared memory atomically"
    );
    // With the slice's first loads copied before the wait: 4 more copies a split-K code.
    let copies = |ptx: &str| ptx.matches("cp.async.cg.shared.global").count();
    assert_eq!(
        copies(&split_ptx(&["--preload-split-k", "4"])),
        copies(&ptx) + 4
    );
    let plain = mkc(
        &[
            "compile",
            llama.to_str().unwrap(),
            "--emit=ptx",
            "--split-k",
            "none",
        ],
        None,
    );
    assert!(
        text(&plain.stdout).contains(".version 8.0"),
        "a kernel without them stays PTX 8.0"
    );
    if no_gpu("gpu_split_k_mlps_pass_on_the_device") {
        return;
    }
    for preload in ["0", "4"] {
        fixtures_match_the_simulator_on_gpu(
            &format!("split-k-{preload}"),
            &["--split-k", "--preload-split-k", preload],
        );
    }
}

/// `--split-k attention` (the output projection added onto the residual by attention's
/// tasks, or with attention in parts by the combine's, each its heads' lanes' part)
/// computes what the simulator does, on every fixture's three programs and with attention
/// whole at every position (`--attention-parts 1`); its kernel has the reductions (checked
/// without a GPU too).
#[test]
fn gpu_split_k_attention_passes_on_the_device() {
    let llama = repo("tests/fixtures/llama-tiny");
    let flags = ["--split-k", "attention", "--attention-parts", "1"];
    let mut args = vec!["compile", llama.to_str().unwrap(), "--emit=ptx"];
    args.extend_from_slice(&flags);
    let o = mkc(&args, None);
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert!(
        text(&o.stdout).contains("red.relaxed.gpu.global.add.v4.f32"),
        "no reductions onto the residual in the kernel"
    );
    if no_gpu("gpu_split_k_attention_passes_on_the_device") {
        return;
    }
    fixtures_match_the_simulator_on_gpu("split-k-attention-whole", &flags);
    fixtures_match_the_simulator_on_gpu("split-k-attention", &flags[..2]);
}

/// `--split-k both` (attention's or the combine's tasks add the output projection onto two
/// sums, the gate/up tasks the down projection onto the second, and each layer's q/k/v
/// tasks write the copy its sums start from) computes what the simulator does, on every
/// fixture's three programs and with attention whole at every position.
#[test]
fn gpu_split_k_both_passes_on_the_device() {
    let llama = repo("tests/fixtures/llama-tiny");
    let flags = ["--split-k", "both", "--attention-parts", "1"];
    // Attention's code adds its part onto two sums: twice the reductions it has alone.
    let reductions = |split: &str| {
        compile_output(
            &llama,
            "--emit=ptx",
            &["--split-k", split, "--attention-parts", "1"],
        )
        .matches("red.relaxed.gpu.global.add.v4.f32")
        .count()
    };
    let (attention, mlp, both) = (
        reductions("attention"),
        reductions("mlp"),
        reductions("both"),
    );
    assert!(attention > 0 && mlp > 0, "no reductions onto the residual");
    assert_eq!(both, 2 * attention + mlp, "{attention} {mlp}");
    if no_gpu("gpu_split_k_both_passes_on_the_device") {
        return;
    }
    fixtures_match_the_simulator_on_gpu("split-k-both-whole", &flags);
    fixtures_match_the_simulator_on_gpu("split-k-both", &flags[..2]);
}

/// `--k-row` (qwen3-tiny, whose K rows are normalised per head: attention's tasks compute
/// their queries' and KV heads' norm and rope, the step's score from the K row apart, and the
/// row goes into the cache after attention) computes what the simulator does on its three
/// programs, with attention whole (three rounds) and in tiles of KV groups (the online
/// pass), and with `--prefetch-light-inputs`, every argmax as transformers'. Without a GPU:
/// the online kernel takes the row, the prefetches are there only when asked for, and the
/// kernel assembles without spills where ptxas is there.
#[test]
fn gpu_k_row_attention_passes_on_the_device() {
    let qwen3 = repo("tests/fixtures/qwen3-tiny");
    let whole = ["--k-row", "--attention-parts", "1"];
    let online = [
        "--k-row",
        "--attention-parts",
        "16",
        "--sms",
        "32",
        "--short-steps",
        "0",
    ];
    assert!(compile_output(&qwen3, "--emit=plan", &online[..5]).contains("attention = \"online\""));
    let whole_ptx = compile_output(&qwen3, "--emit=ptx", &whole);
    // `--prefetch-light-inputs`: attention's tasks ask the inputs of their later norms and
    // ropes into L1 after the wait; without it nothing does.
    let prefetch = |flags: &[&str]| {
        compile_output(&qwen3, "--emit=ptx", flags)
            .matches("prefetch.global.L1")
            .count()
    };
    assert!(prefetch(&["--k-row", "--prefetch-light-inputs"]) > 0);
    assert_eq!(prefetch(&["--k-row"]), 0);
    if let Some(ptxas) = ptxas() {
        let ptx = tmp("k-row.ptx");
        std::fs::write(&ptx, &whole_ptx).unwrap();
        let a = std::process::Command::new(ptxas)
            .args(["-arch=sm_90a", "-v", "-o", "/dev/null"])
            .arg(&ptx)
            .output()
            .unwrap();
        let log = text(&a.stderr);
        assert!(a.status.success(), "{log}");
        assert!(log.contains(" 0 bytes spill stores"), "{log}");
    }
    if no_gpu("gpu_k_row_attention_passes_on_the_device") {
        return;
    }
    let three = ["--k-row", "--short-steps", "8", "--long-steps", "16"];
    for (label, flags) in [
        ("k-row-whole", &whole[..]),
        ("k-row", &three[..]),
        ("k-row-online", &online[..]),
        (
            "k-row-prefetch",
            &["--k-row", "--prefetch-light-inputs"][..],
        ),
    ] {
        let art = compile_artifact(&qwen3, label, flags);
        passes_on_gpu(&qwen3, &art);
    }
}

/// Tiles of a KV head's query heads (16 parts on 32 SMs: a part and one KV head's two query
/// heads a tile) take the kernel's online attention (one pass: K and V of a block copied
/// into shared memory together, scored for the group's heads at once; `--attention-kernel
/// phases` keeps the three rounds); on the device they are checked against the simulator
/// and transformers, every position on that program (`--short-steps 0`: the short one has
/// attention unsplit). Without a GPU, the tiles and the code path are still checked.
#[test]
fn gpu_kv_head_tiles_pass_on_the_device() {
    let dir = repo("tests/fixtures/llama-tiny");
    let flags = [
        "--attention-parts",
        "16",
        "--sms",
        "32",
        "--short-steps",
        "0",
    ];
    let mut args = vec!["compile", dir.to_str().unwrap(), "--emit=tasks"];
    args.extend(flags);
    let o = mkc(&args, None);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let ir = text(&o.stdout);
    let tiles: Vec<&str> = ir
        .split("kind = \"attention\", ")
        .skip(1)
        .filter_map(|t| t.split("tile = [#task.box<").nth(1))
        .collect();
    assert!(!tiles.is_empty(), "{ir}");
    for t in &tiles {
        // [parts, heads, lanes]: the heads axis a whole KV group (llama-tiny: 4 heads, 2 KV).
        let heads = t.split(", ").nth(1).unwrap();
        let (a, b) = heads.split_once(':').unwrap();
        let (a, b): (i64, i64) = (a.parse().unwrap(), b.parse().unwrap());
        assert!(a % 2 == 0 && b - a == 2, "{t}");
    }
    // The online pass gathers scores by indexed shuffles and stages K and V by `cp.async`;
    // the three rounds and tiles of one head (132 SMs) do neither.
    let mlir = |extra: &[&str]| {
        let mut args = vec!["compile", dir.to_str().unwrap(), "--emit=mlir"];
        args.extend(extra);
        let o = mkc(&args, None);
        assert!(o.status.success(), "{}", text(&o.stderr));
        text(&o.stdout)
    };
    // (Norm weights are staged by `cp.async` in every kernel: the online pass adds K and V's.)
    let online = mlir(&flags[..4]);
    let mut phases = flags[..4].to_vec();
    phases.extend(["--attention-kernel", "phases"]);
    let phases = mlir(&phases);
    assert!(online.contains("nvvm.shfl.sync idx"));
    assert!(!phases.contains("nvvm.shfl.sync idx"));
    let copies = |t: &str| t.matches("cp.async.cg").count();
    assert!(
        copies(&online) > copies(&phases),
        "{} {}",
        copies(&online),
        copies(&phases)
    );
    assert!(!mlir(&["--attention-parts", "16"]).contains("nvvm.shfl.sync idx"));
    if no_gpu("gpu_kv_head_tiles_pass_on_the_device") {
        return;
    }
    let art = compile_artifact(&dir, "kv-head-tiles-artifact", &flags);
    passes_on_gpu(&dir, &art);
}

#[test]
fn gpu_short_steps_run_a_second_program_on_the_same_memory() {
    // Positions 0..15 of the fixture run attention unsplit (`short/`), 16.. the split
    // program: the KV caches the first wrote are what the second reads.
    let dir = repo("tests/fixtures/llama-tiny");
    let art = compile_artifact(&dir, "short-steps-artifact", &["--short-steps", "16"]);
    let (m, ms) = (manifest(&art), manifest(&art.join("short")));
    assert_eq!(m["short_steps"], 16);
    assert_eq!(m["position_input"], 1);
    assert_eq!(ms["short_steps"], 0);
    // By default below 192 positions; `--short-steps 0`, or a layout asked for, makes one.
    let def = compile_artifact(&dir, "short-steps-default", &[]);
    assert_eq!(manifest(&def)["short_steps"], 192);
    for (name, flags) in [
        ("short-steps-0", &["--short-steps", "0"][..]),
        ("short-steps-parts", &["--attention-parts", "2"][..]),
    ] {
        let one = compile_artifact(&dir, name, flags);
        assert_eq!(manifest(&one)["short_steps"], 0, "{flags:?}");
        assert!(!one.join("short").exists(), "{flags:?}");
    }
    // The short program has no combine: its attention is one task per head group.
    let program = |d: &Path| std::fs::read_to_string(d.join("program.mlir")).unwrap();
    assert!(program(&art).contains("attention_combine"));
    assert!(!program(&art.join("short")).contains("attention_combine"));
    // A model whose step does not take the position cannot have one; nor a PTX file.
    let onnx = repo("tests/fixtures/llama-tiny/model.onnx");
    let bad = tmp("short-steps-onnx");
    let o = mkc(
        &[
            "compile",
            onnx.to_str().unwrap(),
            "--emit=artifact",
            "-o",
            bad.to_str().unwrap(),
            "--short-steps",
            "16",
        ],
        None,
    );
    assert!(!o.status.success());
    assert!(
        text(&o.stderr).contains("takes the position"),
        "{}",
        text(&o.stderr)
    );
    let o = mkc(
        &[
            "compile",
            dir.to_str().unwrap(),
            "--emit=ptx",
            "--short-steps",
            "16",
        ],
        None,
    );
    assert!(!o.status.success() && text(&o.stderr).contains("--emit=artifact"));
    if no_gpu("gpu_short_steps_run_a_second_program_on_the_same_memory") {
        return;
    }
    passes_on_gpu(&dir, &art);
}

#[test]
fn gpu_long_steps_run_a_third_program_on_the_same_memory() {
    // Positions 0..7 run attention unsplit (`short/`), 8..15 the main program (a task per
    // query head and part), 16.. tiles of a KV head's query heads (`long/`): the caches each
    // wrote are what the next reads. (32 SMs: the long program's 16 parts of 4 heads are
    // more tiles than SMs, so a tile takes a KV head's 2 query heads.)
    let dir = repo("tests/fixtures/llama-tiny");
    let flags = ["--short-steps", "8", "--long-steps", "16", "--sms", "32"];
    let art = compile_artifact(&dir, "long-steps-artifact", &flags);
    let m = manifest(&art);
    assert_eq!(
        (m["short_steps"].clone(), m["long_steps"].clone()),
        (8.into(), 16.into())
    );
    assert_eq!(m["position_input"], 1);
    assert_eq!(manifest(&art.join("long"))["long_steps"], 0);
    // The long program's attention tiles each hold a whole KV group (llama-tiny: 4 query
    // heads, 2 KV heads); the main program's hold one query head.
    let heads_per_tile = |d: &Path| -> Vec<i64> {
        let ir = std::fs::read_to_string(d.join("program.mlir")).unwrap();
        ir.split("kind = \"attention\", ")
            .skip(1)
            .filter_map(|t| t.split("tile = [#task.box<").nth(1))
            .map(|t| {
                let (a, b) = t.split(", ").nth(1).unwrap().split_once(':').unwrap();
                b.parse::<i64>().unwrap() - a.parse::<i64>().unwrap()
            })
            .collect()
    };
    let (long, main) = (heads_per_tile(&art.join("long")), heads_per_tile(&art));
    assert!(!long.is_empty() && long.iter().all(|&h| h == 2), "{long:?}");
    assert!(!main.is_empty() && main.iter().all(|&h| h == 1), "{main:?}");
    // By default: where one layer's K cache reaches 2^20 values (llama-tiny: 2 KV heads of
    // 32, so 16384 positions), when the caches hold that many.
    assert_eq!(
        manifest(&compile_artifact(&dir, "long-default", &[]))["long_steps"],
        0
    );
    let big = compile_artifact(&dir, "long-default-16385", &["--ctx", "16385"]);
    assert_eq!(manifest(&big)["long_steps"], 16384);
    assert!(big.join("long").join("kernel.ptx").is_file());
    // A compile into the same folder without one removes the old one.
    // (`compile_artifact` writes to the folder its name gives: the same one.)
    compile_artifact(&dir, "long-default-16385", &["--long-steps", "0"]);
    assert!(!big.join("long").exists());
    // What cannot have one says why.
    let mha = tmp("long-steps-mha");
    std::fs::create_dir_all(&mha).unwrap();
    let mut cfg: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("config.json")).unwrap()).unwrap();
    cfg["num_key_value_heads"] = cfg["num_attention_heads"].clone();
    std::fs::write(mha.join("config.json"), cfg.to_string()).unwrap();
    let out = tmp("long-steps-bad");
    let onnx = dir.join("model.onnx");
    for (model, extra, why) in [
        (&dir, &["--long-steps", "4"][..], "below --short-steps 8"),
        (&onnx, &["--long-steps", "16"][..], "takes the position"),
        (
            &mha,
            &["--random-weights", "--long-steps", "16"][..],
            "grouped-query attention",
        ),
        (&dir, &["--long-steps=-1"][..], "0 or more"),
    ] {
        let mut args = vec![
            "compile",
            model.to_str().unwrap(),
            "--emit=artifact",
            "-o",
            out.to_str().unwrap(),
            "--short-steps",
            "8",
        ];
        args.extend(extra);
        let o = mkc(&args, None);
        assert!(!o.status.success(), "{extra:?}");
        assert!(
            text(&o.stderr).contains(why),
            "{extra:?}: {}",
            text(&o.stderr)
        );
    }
    if no_gpu("gpu_long_steps_run_a_third_program_on_the_same_memory") {
        return;
    }
    passes_on_gpu(&dir, &art);
    // The bench says which program its position runs.
    for (pos, program) in [("4", "short"), ("12", "main"), ("20", "long")] {
        let o = mkc(
            &[
                "bench",
                art.to_str().unwrap(),
                "--pos",
                pos,
                "--warmup",
                "1",
                "--steps",
                "2",
            ],
            None,
        );
        assert!(o.status.success(), "{}", text(&o.stderr));
        assert_eq!(last_json(&o)["program"], program, "{pos}");
    }
}

#[test]
fn gpu_bench_trace_writes_the_timeline_and_sums_it_by_phase() {
    if no_gpu("gpu_bench_trace_writes_the_timeline_and_sums_it_by_phase") {
        return;
    }
    let art = compile_artifact(&repo("tests/fixtures/llama-tiny"), "trace-artifact", &[]);
    let trace = tmp("trace.json");
    let o = mkc(
        &[
            "bench",
            art.to_str().unwrap(),
            "--pos",
            "8",
            "--warmup",
            "2",
            "--steps",
            "5",
            "--trace",
            trace.to_str().unwrap(),
        ],
        None,
    );
    assert!(o.status.success(), "{}", text(&o.stderr));
    let j = last_json(&o);
    let t = &j["trace"];
    // The Chrome trace, the picture beside it, and the step by phase: llama's layer has
    // q/k/v, attention, o_proj, gate/up and down phases (two of them "proj_residual").
    let events: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&trace).unwrap()).unwrap();
    assert!(events["traceEvents"].as_array().unwrap().len() > 10);
    let svg = std::fs::read_to_string(trace.with_extension("svg")).unwrap();
    assert!(
        svg.starts_with("<svg") && svg.contains("measured step"),
        "{svg}"
    );
    let phases = t["phase_us_per_kind"].as_object().unwrap();
    assert!(phases.contains_key("attention"), "{t}");
    assert!(phases.keys().any(|k| k.contains(" after ")), "{t}");
    assert!(phases.values().all(|v| v.as_f64().unwrap() > 0.0), "{t}");
    // Per kind of task, its median duration and the median wait before one.
    let tasks = t["task_us_median_per_kind"].as_object().unwrap();
    assert!(tasks["attention"].as_f64().unwrap() > 0.0, "{t}");
    let waits = t["wait_us_median_per_kind"].as_object().unwrap();
    assert!(waits.contains_key("attention"), "{t}");
}

#[test]
fn a_bad_artifact_is_a_clear_error() {
    let dir = repo("tests/fixtures/llama-tiny");
    let art = tmp("bad-artifact");
    std::fs::create_dir_all(&art).unwrap();
    std::fs::write(art.join("manifest.json"), "{\"format\": 99}").unwrap();
    let o = check_on_gpu(&dir, &art, false);
    assert_eq!(o.status.code(), Some(1));
    let err = text(&o.stderr);
    assert!(
        err.contains("artifact format 99, this mkc") || err.contains("no CUDA driver"),
        "{err}"
    );
    // Without --artifact, this (MLIR) build compiles the fixture first.
    let o = mkc(&["check", dir.to_str().unwrap(), "--engine", "gpu"], None);
    let err = text(&o.stderr);
    assert!(err.contains("mkc: compiled"), "{err}");
    assert!(
        o.status.success() || err.contains("no CUDA driver"),
        "{err}"
    );
}

#[test]
fn a_task_polls_its_counters_a_thread_each_unless_asked_to_poll_them_in_turn() {
    let model = repo("tests/fixtures/llama-tiny");
    let mlir = |flags: &[&str]| {
        let mut args = vec!["compile", model.to_str().unwrap(), "--emit=mlir"];
        args.extend_from_slice(flags);
        let o = mkc(&args, None);
        assert!(o.status.success(), "{flags:?}: {}", text(&o.stderr));
        text(&o.stdout)
    };
    // The loop over the record's counters around each spin: the last `scf.for` before it.
    let spin_loops = |k: &str| -> Vec<String> {
        let mut last_for = String::new();
        let mut loops = Vec::new();
        for l in k.lines().map(str::trim) {
            if l.starts_with("scf.for") {
                last_for = l.to_string();
            } else if l.starts_with("scf.while : () -> ()") {
                loops.push(last_for.clone());
            }
        }
        loops
    };
    let (par, ser) = (
        spin_loops(&mlir(&[])),
        spin_loops(&mlir(&["--waits", "serial"])),
    );
    assert!(!par.is_empty() && par.len() == ser.len());
    // By default thread i polls counter i (all at once); serial: thread 0 every counter.
    assert!(
        par.iter()
            .all(|l| l.contains("= %tid to") && l.ends_with("step %nthreads {")),
        "{par:?}"
    );
    assert!(
        ser.iter()
            .all(|l| l.contains("= %c0_idx to") && l.ends_with("step %c1_idx {")),
        "{ser:?}"
    );
}
