//! Shared helpers for the integration tests: the installed models and the shared eval data.
#![allow(dead_code)]

use callqa::models::ModelDir;
use std::path::PathBuf;

/// The models installed by `make test` (`callqa models install`).
pub fn model_dir() -> ModelDir {
    let dir = ModelDir(ModelDir::default_path());
    assert!(
        dir.0.join("ggml-base.bin").is_file(),
        "models are not installed in {}; run `make test` (or `callqa models install`) first",
        dir.0.display()
    );
    dir
}

/// `../shared/eval`, beside the repository.
pub fn eval_dir() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/eval");
    assert!(
        dir.is_dir(),
        "shared evaluation data not found at {}",
        dir.display()
    );
    dir
}

/// (path, reference text) rows of a REFERENCE.tsv.
pub fn references(tsv: &str) -> Vec<(PathBuf, String)> {
    let eval = eval_dir();
    let text = std::fs::read_to_string(eval.join(tsv)).expect("reference file");
    text.lines()
        .skip(1)
        .filter_map(|line| {
            let cols: Vec<&str> = line.split('\t').collect();
            (cols.len() >= 3).then(|| (eval.join(cols[0]), cols[2].to_owned()))
        })
        .collect()
}

pub fn load_16k(path: &std::path::Path) -> Vec<f32> {
    let bytes = std::fs::read(path).expect("read audio");
    callqa::audio::load_16k_mono(bytes).expect("decode").1
}

pub fn threads() -> usize {
    callqa::engines::default_threads()
}
