//! Compile on first run: `run`, `chat` and `serve` on the GPU without `--artifact` use the
//! artifact cached for the model under the user's cache folder
//! (`$XDG_CACHE_HOME` or `~/.cache`, then `mkc/artifacts/KEY`), compiling it there first in a
//! build with MLIR. KEY hashes everything that changes the artifact: the model's bytes (its
//! config and weights files, or the GGUF file), every compile option (quantization, context,
//! target and its fields, passes) and the mkc version. An entry is written into a temporary
//! folder and renamed into place, so concurrent runs never see half of one.

use crate::artifact;
use crate::compile::{compile, CompileOptions};
use crate::import::ModelOptions;
use crate::level::Level;
use crate::run::RunOptions;
use std::path::{Path, PathBuf};
use xxhash_rust::xxh3::Xxh3;

/// The cache folder: `$XDG_CACHE_HOME/mkc/artifacts`, else `$HOME/.cache/mkc/artifacts`.
pub fn cache_root() -> Result<PathBuf, String> {
    let base = match std::env::var_os("XDG_CACHE_HOME").filter(|v| !v.is_empty()) {
        Some(x) => PathBuf::from(x),
        None => match std::env::var_os("HOME").filter(|v| !v.is_empty()) {
            Some(h) => PathBuf::from(h).join(".cache"),
            None => {
                return Err(
                    "neither XDG_CACHE_HOME nor HOME is set: there is no cache folder for compiled artifacts (give --artifact DIR)".into(),
                )
            }
        },
    };
    Ok(base.join("mkc").join("artifacts"))
}

/// What the GPU engine compiles for `o` with a KV cache of `context` positions: the
/// default artifact pipeline, the run's model options and target.
pub fn compile_options(o: &RunOptions, context: usize) -> CompileOptions {
    CompileOptions {
        model: ModelOptions {
            ctx: context as i64,
            ..o.model.clone()
        },
        target: o.target.clone(),
        level: Level::Artifact,
        ..CompileOptions::default()
    }
}

/// The files whose bytes are the model: a GGUF or other file itself (a config.json with the
/// checkpoint files beside it, when there are any), or a folder's config.json and its
/// safetensors files (and their index).
fn model_files(model: &Path) -> Result<Vec<PathBuf>, String> {
    let is_config = model.extension().is_some_and(|e| e == "json");
    let dir = if model.is_dir() {
        model.to_path_buf()
    } else if is_config {
        model.parent().map(PathBuf::from).unwrap_or_default()
    } else {
        return Ok(vec![model.to_path_buf()]);
    };
    let mut files = vec![if model.is_dir() {
        dir.join("config.json")
    } else {
        model.to_path_buf()
    }];
    let listing =
        std::fs::read_dir(&dir).map_err(|e| format!("cannot list '{}': {e}", dir.display()))?;
    let mut weights: Vec<PathBuf> = listing
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
            name.ends_with(".safetensors") || name == "model.safetensors.index.json"
        })
        .collect();
    weights.sort();
    files.extend(weights);
    Ok(files)
}

/// The cache key of compiling `model` with `c`: a 128-bit hash (hex) of the mkc version,
/// the options and the model's files (names and bytes). With `memo` (the cache folder), each
/// file's digest is remembered there by its path, length and modification time, so a later
/// run does not read a large model again.
pub fn key(model: &Path, c: &CompileOptions, memo: Option<&Path>) -> Result<String, String> {
    let mut h = Xxh3::new();
    let mut field = |bytes: &[u8]| {
        h.update(&(bytes.len() as u64).to_le_bytes());
        h.update(bytes);
    };
    field(concat!("mkc ", env!("CARGO_PKG_VERSION")).as_bytes());
    // Every option, as Debug spells it: a new option changes the key by itself.
    field(format!("{c:?}").as_bytes());
    for file in model_files(model)? {
        let name = file.file_name().map(|n| n.to_string_lossy().into_owned());
        field(name.unwrap_or_default().as_bytes());
        field(&file_digest(&file, memo)?.to_le_bytes());
    }
    Ok(format!("{:032x}", h.digest128()))
}

/// The 128-bit digest of a file's bytes, remembered under `memo/.digests` (see [`key`]).
fn file_digest(file: &Path, memo: Option<&Path>) -> Result<u128, String> {
    let cannot = |e: std::io::Error| format!("cannot read '{}': {e}", file.display());
    let meta = std::fs::metadata(file).map_err(cannot)?;
    let modified = meta
        .modified()
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_nanos());
    let path = std::fs::canonicalize(file).map_err(cannot)?;
    let stamp = format!("{}\0{}\0{modified}", path.display(), meta.len());
    let entry = memo.map(|m| {
        m.join(".digests").join(format!(
            "{:032x}",
            xxhash_rust::xxh3::xxh3_128(stamp.as_bytes())
        ))
    });
    let remembered = entry
        .as_ref()
        .and_then(|e| std::fs::read_to_string(e).ok())
        .and_then(|t| u128::from_str_radix(t.trim(), 16).ok());
    if let Some(d) = remembered {
        return Ok(d);
    }
    let bytes = std::fs::read(file).map_err(cannot)?;
    let digest = xxhash_rust::xxh3::xxh3_128(&bytes);
    // Remembered best-effort (written whole, then renamed): without it the next run reads
    // the file again.
    if let Some(e) = entry {
        if let Some(dir) = e.parent() {
            let tmp = dir.join(format!(".tmp-{}", std::process::id()));
            let _ = std::fs::create_dir_all(dir)
                .and_then(|()| std::fs::write(&tmp, format!("{digest:032x}")))
                .and_then(|()| std::fs::rename(&tmp, &e));
        }
    }
    Ok(digest)
}

/// The cached artifact at `root` for `key`, if a complete one is there.
pub fn lookup(root: &Path, key: &str) -> Option<PathBuf> {
    let dir = root.join(key);
    dir.join("manifest.json").is_file().then_some(dir)
}

/// Compiles `model` with `c` into the cache entry `root/key`: written into a temporary folder
/// beside it, then renamed into place (where another run got there first, its entry is kept).
pub fn compile_into(
    root: &Path,
    key: &str,
    model: &Path,
    c: &CompileOptions,
) -> Result<PathBuf, String> {
    std::fs::create_dir_all(root)
        .map_err(|e| format!("cannot create the artifact cache '{}': {e}", root.display()))?;
    let compiled = compile(model, c)?;
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    let tmp = root.join(format!(".tmp-{key}-{}-{nanos}", std::process::id()));
    let result = artifact::write(&tmp, &compiled).and_then(|()| {
        let dir = root.join(key);
        match std::fs::rename(&tmp, &dir) {
            Ok(()) => Ok(dir),
            Err(_) if lookup(root, key).is_some() => Ok(dir),
            Err(e) => Err(format!(
                "cannot move the compiled artifact into '{}': {e}",
                dir.display()
            )),
        }
    });
    // Gone after the rename; left behind when another run's entry won or writing failed.
    let _ = std::fs::remove_dir_all(&tmp);
    result
}

/// The artifact the GPU engine runs for `o`: `--artifact` where given, else the cached one
/// (compiled now if there is none, in a build with MLIR).
pub fn artifact_for(model: &Path, o: &RunOptions, context: usize) -> Result<PathBuf, String> {
    match &o.artifact {
        Some(dir) => Ok(dir.clone()),
        None => artifact_in(&cache_root()?, model, o, context),
    }
}

/// The cached artifact under `root` for `o`, compiled now if there is none.
fn artifact_in(
    root: &Path,
    model: &Path,
    o: &RunOptions,
    context: usize,
) -> Result<PathBuf, String> {
    let c = compile_options(o, context);
    let key = key(model, &c, Some(root))?;
    if let Some(dir) = lookup(root, &key) {
        eprintln!("mkc: using the cached artifact {}", dir.display());
        return Ok(dir);
    }
    if !cfg!(feature = "mlir") {
        return Err(format!(
            "no compiled artifact for {} in the cache ({}), and this mkc was built without MLIR (the runtime-only build), so it cannot compile one: compile it with `mkc compile {} --emit=artifact -o DIR` (an MLIR build) and give --artifact DIR, or use an mkc built with the default features",
            model.display(),
            root.join(&key).display(),
            model.display()
        ));
    }
    eprintln!(
        "mkc: compiling {} for the GPU (first run; cached for the next ones in {})",
        model.display(),
        root.display()
    );
    let start = std::time::Instant::now();
    let dir = compile_into(root, &key, model, &c)?;
    eprintln!(
        "mkc: compiled in {:.1} s: {}",
        start.elapsed().as_secs_f64(),
        dir.display()
    );
    Ok(dir)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::Engine;
    use crate::sample::SamplingOptions;
    use mkc_ir::TargetSpec;

    fn options() -> RunOptions {
        RunOptions {
            model: ModelOptions::default(),
            engine: Engine::Gpu,
            level: Level::Fused,
            artifact: None,
            target: TargetSpec::default(),
            banned: Vec::new(),
            eos: Vec::new(),
            sampling: SamplingOptions::default(),
        }
    }

    fn temp(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("mkc-cache-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    /// A copy of llama-tiny's config and weights.
    fn model_copy(name: &str) -> PathBuf {
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/llama-tiny");
        let dir = temp(name);
        for f in ["config.json", "model.safetensors"] {
            std::fs::copy(src.join(f), dir.join(f)).unwrap();
        }
        dir
    }

    #[test]
    fn the_key_changes_with_an_option_or_a_model_byte_and_not_otherwise() {
        let model = model_copy("key");
        let o = options();
        let k = |o: &RunOptions, context| key(&model, &compile_options(o, context), None).unwrap();
        let base = k(&o, 256);
        assert_eq!(base.len(), 32);
        assert_eq!(k(&o, 256), base);
        // Options that do not change the artifact do not change the key.
        let mut same = o.clone();
        same.sampling.temperature = 0.7;
        same.eos = vec![2];
        same.engine = Engine::Interp;
        assert_eq!(k(&same, 256), base);
        let mut keys = vec![base.clone(), k(&o, 512)];
        let mut q = o.clone();
        q.model.quantize = Some(mkc_ir::quant::BlockFormat::from_name("q8_0").unwrap());
        keys.push(k(&q, 256));
        let mut t = o.clone();
        t.target.fields.push(("sms".into(), "66".into()));
        keys.push(k(&t, 256));
        let mut t = o.clone();
        t.target.preset = Some("h200".into());
        keys.push(k(&t, 256));
        let mut c = o.clone();
        c.model.compute = mkc_ir::ElemType::BF16;
        keys.push(k(&c, 256));
        // The digests remembered in the cache folder give the same key, and are what is read.
        let root = temp("memo");
        let c = compile_options(&o, 256);
        assert_eq!(key(&model, &c, Some(&root)).unwrap(), base);
        let digests = root.join(".digests");
        let entries: Vec<PathBuf> = std::fs::read_dir(&digests)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        assert_eq!(entries.len(), 2);
        for e in &entries {
            std::fs::write(e, format!("{:032x}", 1)).unwrap();
        }
        assert_ne!(key(&model, &c, Some(&root)).unwrap(), base);
        std::fs::remove_dir_all(&digests).unwrap();
        assert_eq!(key(&model, &c, Some(&root)).unwrap(), base);
        // One weight byte. (Its modification time set a second on: a coarse clock could give
        // a rewrite within the same tick the same time, which the digests' stamp would miss.)
        let weights = model.join("model.safetensors");
        let mut bytes = std::fs::read(&weights).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 1;
        std::fs::write(&weights, &bytes).unwrap();
        let later = std::time::SystemTime::now() + std::time::Duration::from_secs(1);
        let f = std::fs::File::options().write(true).open(&weights).unwrap();
        f.set_modified(later).unwrap();
        drop(f);
        keys.push(k(&o, 256));
        assert_eq!(key(&model, &c, Some(&root)).unwrap(), keys[keys.len() - 1]);
        std::fs::remove_dir_all(&root).unwrap();
        // One config byte (a key's value the compile does not read: the bytes are the key).
        let config = model.join("config.json");
        let text = std::fs::read_to_string(&config).unwrap();
        std::fs::write(
            &config,
            text.replace("\"pad_token_id\": null", "\"pad_token_id\": 0"),
        )
        .unwrap();
        keys.push(k(&o, 256));
        let distinct: std::collections::HashSet<_> = keys.iter().collect();
        assert_eq!(distinct.len(), keys.len(), "{keys:?}");
        std::fs::remove_dir_all(&model).unwrap();
    }

    #[test]
    fn the_cache_root_follows_xdg_then_home() {
        // (Read only: the environment is the process's, shared with other tests.)
        let root = cache_root().unwrap();
        assert!(root.ends_with("mkc/artifacts"), "{}", root.display());
    }

    /// The runtime-only build finds what is cached, and cannot compile what is not.
    #[cfg(not(feature = "mlir"))]
    #[test]
    fn without_mlir_a_missing_entry_says_how_to_get_one() {
        let root = temp("runtime-only");
        let model = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/llama-tiny");
        let e = artifact_in(&root, &model, &options(), 64).unwrap_err();
        assert!(
            e.starts_with(&format!("no compiled artifact for {}", model.display())),
            "{e}"
        );
        assert!(
            e.contains("this mkc was built without MLIR (the runtime-only build)"),
            "{e}"
        );
        assert!(e.contains("`mkc compile"), "{e}");
        // An entry in the cache (here a stand-in with a manifest) is used.
        let key = key(&model, &compile_options(&options(), 64), Some(&root)).unwrap();
        std::fs::create_dir_all(root.join(&key)).unwrap();
        std::fs::write(root.join(&key).join("manifest.json"), "{}").unwrap();
        assert_eq!(
            artifact_in(&root, &model, &options(), 64).unwrap(),
            root.join(&key)
        );
        std::fs::remove_dir_all(&root).unwrap();
    }

    /// Compiling into the cache needs MLIR (the PTX), not a GPU.
    #[cfg(feature = "mlir")]
    #[test]
    fn a_compiled_entry_is_found_by_the_next_lookup() {
        let model = model_copy("entry");
        let root = temp("root");
        let c = compile_options(&options(), 64);
        let k = key(&model, &c, Some(&root)).unwrap();
        assert!(lookup(&root, &k).is_none());
        let dir = compile_into(&root, &k, &model, &c).unwrap();
        assert_eq!(dir, root.join(&k));
        assert_eq!(lookup(&root, &k), Some(dir.clone()));
        let art = mkc_runtime::artifact::Artifact::open(&dir).unwrap();
        art.check_model(&[&model]).unwrap();
        // No temporary folder is left beside it; a second compile into the taken entry
        // keeps it.
        assert_eq!(compile_into(&root, &k, &model, &c).unwrap(), dir);
        let names: Vec<_> = std::fs::read_dir(&root)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert!(names.contains(&std::ffi::OsString::from(&k)), "{names:?}");
        assert!(
            names
                .iter()
                .all(|n| !n.to_string_lossy().starts_with(".tmp-")),
            "{names:?}"
        );
        // The run's way in finds it too.
        let found = artifact_in(&root, &model, &options(), 64).unwrap();
        assert_eq!(found, dir);
        std::fs::remove_dir_all(&root).unwrap();
        std::fs::remove_dir_all(&model).unwrap();
    }
}
