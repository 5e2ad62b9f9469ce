//! `mkc chat` through a terminal: a model with SmolLM2's tokenizer and chat template (from
//! ../shared/fixtures/smollm2-135m-q4_1) on llama-tiny's shapes with random weights.

use crate::{last_json, mkc, text};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

fn repo(p: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(p)
}

/// llama-tiny's config with SmolLM2's vocabulary size, and SmolLM2's tokenizer files.
fn chat_model(tag: &str, files: &[&str]) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("mkc-chat-{}-{tag}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let config = std::fs::read_to_string(repo("tests/fixtures/llama-tiny/config.json")).unwrap();
    let mut config: serde_json::Value = serde_json::from_str(&config).unwrap();
    config["vocab_size"] = 49152.into();
    std::fs::write(dir.join("config.json"), config.to_string()).unwrap();
    let smollm2 = repo("../shared/fixtures/smollm2-135m-q4_1");
    for f in files {
        std::fs::copy(smollm2.join(f), dir.join(f)).unwrap();
    }
    dir
}

const TOKENIZER: [&str; 3] = [
    "tokenizer.json",
    "tokenizer_config.json",
    "chat_template.jinja",
];

/// Sampled, so that each token depends on the exact logits (the context they came from).
const DECODE: [&str; 7] = [
    "--random-weights",
    "--max-new-tokens",
    "8",
    "--temperature",
    "1",
    "--seed",
    "7",
];

fn ids(v: &serde_json::Value) -> Vec<i64> {
    v.as_array()
        .unwrap_or_else(|| panic!("not a list: {v}"))
        .iter()
        .map(|t| t.as_i64().unwrap())
        .collect()
}

#[test]
fn two_turns_through_a_terminal_the_second_continuing_the_first() {
    if Command::new("script").arg("--version").output().is_err() {
        eprintln!("SKIPPED: no `script` (util-linux) to run mkc chat in a pseudo-terminal");
        return;
    }
    let model = chat_model("pty", &TOKENIZER);
    let cmd = format!(
        "{} chat {} --engine interp --verbose {}",
        env!("CARGO_BIN_EXE_mkc"),
        model.display(),
        DECODE.join(" ")
    );
    // `script` runs the chat on a pseudo-terminal fed from our pipe.
    let mut child = Command::new("script")
        .args(["-q", "-e", "-c", &cmd, "/dev/null"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut input = child.stdin.take().unwrap();
    input
        .write_all(b"Hello there\nWhat did I just say?\n/reset\nHello there\n/exit\n")
        .unwrap();
    drop(input);
    let o = child.wait_with_output().unwrap();
    let out = text(&o.stdout);
    assert!(o.status.success(), "{out}{}", text(&o.stderr));
    // At a terminal it prompts for each message.
    assert!(out.contains("> "), "{out}");
    let turns: Vec<serde_json::Value> = out
        .lines()
        .filter_map(|l| l.trim().strip_prefix('{').map(|j| format!("{{{j}")))
        .map(|j| serde_json::from_str(&j).unwrap_or_else(|e| panic!("{e}: {j}")))
        .collect();
    assert_eq!(turns.len(), 3, "{out}");
    let (first, second) = (&turns[0], &turns[1]);
    let first_prompt = ids(&first["prompt_ids"]);
    let first_answer = ids(&first["generated"]);
    assert_eq!(first["reused"], 0);
    assert_eq!(first["fed"], first_prompt.len());
    assert_eq!(first_answer.len(), 8);
    // The second turn's conversation holds the first; the cache had all of the first turn
    // (its prompt and answer), so only the new tokens were fed.
    let second_prompt = ids(&second["prompt_ids"]);
    let held = first_prompt.len() + first_answer.len();
    assert_eq!(second["reused"], held, "{second}");
    assert_eq!(second["fed"], second_prompt.len() - held);
    assert_eq!(second_prompt[..first_prompt.len()], first_prompt);
    assert_eq!(second_prompt[first_prompt.len()..held], first_answer);
    // After /reset, the first message again starts afresh and gets the first answer.
    let third = &turns[2];
    assert_eq!(third["reused"], 0, "{third}");
    assert_eq!(ids(&third["prompt_ids"]), first_prompt);
    assert_eq!(ids(&third["generated"]), first_answer);
    // The second answer is what one run over the whole conversation gives.
    let prompt: Vec<String> = second_prompt.iter().map(|t| t.to_string()).collect();
    let prompt = prompt.join(",");
    let model_arg = model.to_str().unwrap();
    let mut args = vec![
        "run",
        model_arg,
        "--engine",
        "interp",
        "--prompt-ids",
        &prompt,
    ];
    args.extend(DECODE);
    let run = mkc(&args, None);
    assert!(run.status.success(), "{}", text(&run.stderr));
    assert_eq!(
        ids(&last_json(&run)["generated"]),
        ids(&second["generated"])
    );
    std::fs::remove_dir_all(&model).unwrap();
}

#[test]
fn a_model_without_a_tokenizer_or_a_template_is_named() {
    let fixture = repo("tests/fixtures/llama-tiny");
    let o = mkc(
        &["chat", fixture.to_str().unwrap(), "--engine", "interp"],
        Some("hi\n"),
    );
    assert_eq!(o.status.code(), Some(1));
    let e = text(&o.stderr);
    assert!(e.contains("mkc chat needs the model's tokenizer:"), "{e}");
    let model = chat_model("bare", &TOKENIZER[..2]);
    let o = mkc(
        &["chat", model.to_str().unwrap(), "--engine", "interp"],
        Some("hi\n"),
    );
    assert_eq!(o.status.code(), Some(1));
    let e = text(&o.stderr);
    assert!(
        e.contains(&format!("{} has no chat template", model.display())),
        "{e}"
    );
    // From a pipe, a turn that fails ends the chat with its error.
    let model = chat_model("small", &TOKENIZER);
    let o = mkc(
        &[
            "chat",
            model.to_str().unwrap(),
            "--engine",
            "interp",
            "--random-weights",
            "--ctx",
            "8",
        ],
        Some("hi\n"),
    );
    assert_eq!(o.status.code(), Some(1));
    let e = text(&o.stderr);
    assert!(e.contains("more than the context (8 positions)"), "{e}");
    for dir in [
        model
            .parent()
            .unwrap()
            .join(format!("mkc-chat-{}-bare", std::process::id())),
        model,
    ] {
        std::fs::remove_dir_all(dir).unwrap();
    }
}

/// --stop ends an answer at the first appearance of its string: the answer printed is the
/// same one without --stop, cut before it.
#[test]
fn a_stop_string_ends_the_answer_before_it() {
    let model = chat_model("stop", &TOKENIZER);
    let m = model.to_str().unwrap();
    let chat = |extra: &[&str]| {
        let mut args = vec!["chat", m, "--engine", "interp", "--verbose"];
        args.extend(DECODE);
        args.extend(extra);
        let o = mkc(&args, Some("Tell me a story.\n"));
        let (out, err) = (text(&o.stdout), text(&o.stderr));
        assert!(o.status.success(), "{err}");
        let turn = err
            .lines()
            .rev()
            .find(|l| l.starts_with('{'))
            .unwrap_or_else(|| panic!("no --verbose line: {err}"));
        let turn: serde_json::Value = serde_json::from_str(turn).unwrap();
        (out.lines().next().unwrap_or("").to_string(), turn)
    };
    let (whole, turn) = chat(&[]);
    assert_eq!(turn["stop_reason"], "max_new_tokens", "{turn}");
    // A string from inside the answer (its 3rd to 5th characters).
    let stop: String = whole.chars().skip(2).take(3).collect();
    assert_eq!(stop.chars().count(), 3, "answer too short: {whole:?}");
    let (cut, turn) = chat(&["--stop", &stop]);
    assert_eq!(turn["stop_reason"], "stop_string", "{turn}");
    assert_eq!(cut, whole[..whole.find(&stop).unwrap()], "stop {stop:?}");
    std::fs::remove_dir_all(model).unwrap();
}

/// Without --engine, run (and chat) pick the GPU when there is one, else the interpreter,
/// and say which; with it, nothing is said.
#[test]
fn the_default_engine_is_said_on_stderr() {
    let fixture = repo("tests/fixtures/llama-tiny");
    let run = [
        "run",
        fixture.to_str().unwrap(),
        "--prompt-ids",
        "1,2",
        "--max-new-tokens",
        "2",
    ];
    let o = mkc(&run, None);
    let err = text(&o.stderr);
    assert!(o.status.success(), "{err}");
    let said = err
        .lines()
        .find_map(|l| l.strip_prefix("mkc: engine "))
        .unwrap_or_else(|| panic!("{err}"));
    let engine = said.split(' ').next().unwrap();
    assert_eq!(last_json(&o)["engine"], engine, "{err}");
    assert!(said.ends_with("; --engine chooses)"), "{said}");
    let mut given = run.to_vec();
    given.extend(["--engine", "interp"]);
    let o = mkc(&given, None);
    assert!(o.status.success());
    assert!(
        !text(&o.stderr).contains("mkc: engine"),
        "{}",
        text(&o.stderr)
    );
}
