//! What a batch works on: the recordings named by files, folders (recursively) and globs, and
//! each one's call metadata, from a sidecar file, the file name, or defaults.

use crate::service::CallMeta;
use chrono::{DateTime, NaiveDate, Utc};
use serde::Deserialize;
use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum InputError {
    #[error("{arg}: {source}")]
    Walk { arg: String, source: std::io::Error },
    #[error("{arg}: {detail}")]
    Glob { arg: String, detail: String },
    #[error("{0}: no such file, folder or matching recording")]
    NotFound(String),
    #[error("no recordings found in {0} (looked for: {exts})", exts = AUDIO_EXTENSIONS.join(", "))]
    EmptyFolder(String),
    #[error("{path}: {detail}")]
    Sidecar { path: PathBuf, detail: String },
    #[error("name pattern {pattern:?}: {detail}")]
    Pattern { pattern: String, detail: String },
    #[error("the file name {0:?} does not match the name pattern")]
    NameMismatch(String),
}

/// File extensions taken from folders (a file named explicitly is always taken).
const AUDIO_EXTENSIONS: &[&str] = &[
    "wav", "mp3", "m4a", "mp4", "aac", "flac", "ogg", "oga", "opus", "webm", "mkv", "mka",
];

/// Every recording the arguments name, sorted and without repeats.
pub fn expand(args: &[String]) -> Result<Vec<PathBuf>, InputError> {
    let mut found = BTreeSet::new();
    for arg in args {
        let walk_err = |source| InputError::Walk {
            arg: arg.clone(),
            source,
        };
        let path = Path::new(arg);
        if path.is_dir() {
            let before = found.len();
            walk(path, &mut found).map_err(walk_err)?;
            if found.len() == before {
                return Err(InputError::EmptyFolder(arg.clone()));
            }
        } else if path.exists() {
            found.insert(path.to_owned());
        } else {
            let glob_err = |detail: String| InputError::Glob {
                arg: arg.clone(),
                detail,
            };
            let matches = glob::glob(arg).map_err(|e| glob_err(e.to_string()))?;
            let before = found.len();
            for m in matches {
                let m = m.map_err(|e| glob_err(e.to_string()))?;
                if m.is_dir() {
                    walk(&m, &mut found).map_err(walk_err)?;
                } else {
                    found.insert(m);
                }
            }
            if found.len() == before {
                return Err(InputError::NotFound(arg.clone()));
            }
        }
    }
    Ok(found.into_iter().collect())
}

fn walk(dir: &Path, found: &mut BTreeSet<PathBuf>) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            walk(&path, found)?;
        } else if path
            .extension()
            .and_then(|e| e.to_str())
            .is_some_and(|e| AUDIO_EXTENSIONS.contains(&e.to_ascii_lowercase().as_str()))
        {
            found.insert(path);
        }
    }
    Ok(())
}

/// What a batch knows of one recording: the call's metadata, which channel is the agent, and
/// when the file was made (the call date's default).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FileMeta {
    pub file: String,
    pub call: CallMeta,
    pub agent_channel: Option<usize>,
    pub recorded_at: Option<DateTime<Utc>>,
}

/// Metadata as a sidecar row, a file name or the flags give it. Empty fields take defaults.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetaRow {
    /// The sidecar's key: a file name or a path ending.
    #[serde(default)]
    pub file: String,
    #[serde(default)]
    pub call_id: Option<String>,
    #[serde(default)]
    pub rep_id: Option<String>,
    #[serde(default)]
    pub customer_id: Option<String>,
    /// Which channel of a stereo recording is the agent.
    #[serde(default)]
    pub agent_channel: Option<usize>,
    #[serde(default)]
    pub call_date: Option<NaiveDate>,
}

impl MetaRow {
    /// Fields set here win over `other`'s.
    fn or(self, other: MetaRow) -> MetaRow {
        MetaRow {
            file: self.file,
            call_id: self.call_id.or(other.call_id),
            rep_id: self.rep_id.or(other.rep_id),
            customer_id: self.customer_id.or(other.customer_id),
            agent_channel: self.agent_channel.or(other.agent_channel),
            call_date: self.call_date.or(other.call_date),
        }
    }
}

/// Metadata for a batch: sidecar rows and/or a file-name pattern.
#[derive(Debug, Default)]
pub struct Metadata {
    rows: Vec<MetaRow>,
    pattern: Option<NamePattern>,
    /// What applies to every call unless its row or name says otherwise (the CLI's flags).
    fallback: MetaRow,
}

impl Metadata {
    /// `sidecar`: a CSV with a header (`file` and any of call_id, rep_id, customer_id,
    /// agent_channel, call_date) or a JSON array of such objects.
    pub fn new(
        sidecar: Option<&Path>,
        pattern: Option<&str>,
        fallback: MetaRow,
    ) -> Result<Self, InputError> {
        let rows = match sidecar {
            None => Vec::new(),
            Some(path) => read_sidecar(path)?,
        };
        let pattern = pattern.map(NamePattern::parse).transpose()?;
        Ok(Self {
            rows,
            pattern,
            fallback,
        })
    }

    /// The call's metadata: its sidecar row, then what the name pattern reads from the file
    /// name, then the fallback. What none of them gives takes the service's defaults (the
    /// call id from the content, the date from the file's modification time).
    pub fn for_file(&self, path: &Path) -> Result<FileMeta, InputError> {
        let row = self
            .rows
            .iter()
            .find(|r| !r.file.is_empty() && path.ends_with(&r.file))
            .cloned()
            .unwrap_or_default();
        let stem = path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        let from_name = match &self.pattern {
            Some(p) => p.read(&stem).ok_or(InputError::NameMismatch(stem))?,
            None => MetaRow::default(),
        };
        let recorded_at = std::fs::metadata(path)
            .and_then(|m| m.modified())
            .ok()
            .map(DateTime::<Utc>::from);
        let m = row.or(from_name).or(self.fallback.clone());
        Ok(FileMeta {
            file: path.display().to_string(),
            call: CallMeta {
                call_id: m.call_id,
                rep_id: m.rep_id,
                customer_id: m.customer_id,
                call_date: m.call_date,
            },
            agent_channel: m.agent_channel,
            recorded_at,
        })
    }
}

/// The rows of a sidecar file.
fn read_sidecar(path: &Path) -> Result<Vec<MetaRow>, InputError> {
    let fail = |detail: String| InputError::Sidecar {
        path: path.to_owned(),
        detail,
    };
    let text = std::fs::read_to_string(path).map_err(|e| fail(e.to_string()))?;
    let is_json =
        path.extension().is_some_and(|e| e == "json") || text.trim_start().starts_with('[');
    let rows: Vec<MetaRow> = if is_json {
        serde_json::from_str(&text).map_err(|e| fail(e.to_string()))?
    } else {
        csv::Reader::from_reader(text.as_bytes())
            .deserialize()
            .collect::<Result<_, _>>()
            .map_err(|e| fail(e.to_string()))?
    };
    // Empty CSV cells are empty strings: treat them as absent.
    let rows = rows
        .into_iter()
        .map(|mut r| {
            for f in [&mut r.call_id, &mut r.rep_id, &mut r.customer_id] {
                if f.as_deref().is_some_and(str::is_empty) {
                    *f = None;
                }
            }
            r
        })
        .collect();
    Ok(rows)
}

/// Reads metadata from file names: `{rep_id}_{call_id}_{call_date}` takes `rep-7_c-42_2026-11-02`
/// apart. Fields: call_id, rep_id, customer_id, agent_channel, call_date (YYYY-MM-DD or
/// YYYYMMDD), and `_` for a part to ignore. Each field ends where the next literal text starts.
#[derive(Debug, Clone)]
pub struct NamePattern {
    /// Literal text, then (field, literal) pairs.
    head: String,
    parts: Vec<(String, String)>,
}

const FIELDS: &[&str] = &[
    "call_id",
    "rep_id",
    "customer_id",
    "agent_channel",
    "call_date",
    "_",
];

impl NamePattern {
    pub fn parse(pattern: &str) -> Result<Self, InputError> {
        let fail = |detail: String| InputError::Pattern {
            pattern: pattern.to_owned(),
            detail,
        };
        let mut pieces = pattern.split('{');
        let head = pieces.next().unwrap_or_default().to_owned();
        let mut parts = Vec::new();
        for piece in pieces {
            let (field, literal) = piece
                .split_once('}')
                .ok_or_else(|| fail("a { without its }".into()))?;
            if !FIELDS.contains(&field) {
                return Err(fail(format!(
                    "unknown field {{{field}}} (known: {})",
                    FIELDS.join(", ")
                )));
            }
            if literal.is_empty() && parts.len() + 1 < pattern.matches('{').count() {
                return Err(fail("fields need text between them".into()));
            }
            parts.push((field.to_owned(), literal.to_owned()));
        }
        Ok(Self { head, parts })
    }

    /// The fields of a file stem, or None when it does not fit the pattern.
    pub fn read(&self, stem: &str) -> Option<MetaRow> {
        let mut rest = stem.strip_prefix(self.head.as_str())?;
        let mut values: HashMap<&str, &str> = HashMap::new();
        for (i, (field, literal)) in self.parts.iter().enumerate() {
            let last = i + 1 == self.parts.len();
            let (value, after) = if literal.is_empty() {
                (rest, "")
            } else if last {
                (rest.strip_suffix(literal.as_str())?, "")
            } else {
                let at = rest.find(literal.as_str())?;
                (&rest[..at], &rest[at + literal.len()..])
            };
            if value.is_empty() {
                return None;
            }
            values.insert(field, value);
            rest = after;
        }
        let date = |s: &str| {
            NaiveDate::parse_from_str(s, "%Y-%m-%d")
                .or_else(|_| NaiveDate::parse_from_str(s, "%Y%m%d"))
                .ok()
        };
        Some(MetaRow {
            file: String::new(),
            call_id: values.get("call_id").map(|s| s.to_string()),
            rep_id: values.get("rep_id").map(|s| s.to_string()),
            customer_id: values.get("customer_id").map(|s| s.to_string()),
            agent_channel: match values.get("agent_channel") {
                Some(s) => Some(s.parse().ok()?),
                None => None,
            },
            call_date: match values.get("call_date") {
                Some(s) => Some(date(s)?),
                None => None,
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn name_patterns_take_file_names_apart() {
        let p = NamePattern::parse("{rep_id}_{call_id}_{call_date}").unwrap();
        let m = p.read("rep-7_c-42_2026-11-02").unwrap();
        assert_eq!(m.rep_id.as_deref(), Some("rep-7"));
        assert_eq!(m.call_id.as_deref(), Some("c-42"));
        assert_eq!(m.call_date, NaiveDate::from_ymd_opt(2026, 11, 2));
        let p = NamePattern::parse("call-{call_id}-agent{agent_channel}").unwrap();
        let m = p.read("call-991-agent1").unwrap();
        assert_eq!(
            (m.call_id.as_deref(), m.agent_channel),
            (Some("991"), Some(1))
        );
        assert!(p.read("other-991").is_none());
        assert!(
            p.read("call-991-agentX").is_none(),
            "a channel must be a number"
        );
        assert!(NamePattern::parse("{rep}").is_err());
        assert!(NamePattern::parse("{rep_id}{call_id}").is_err());
    }

    #[test]
    fn folders_are_walked_for_audio_and_globs_expanded() {
        let dir = std::env::temp_dir().join(format!("callqa-inputs-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("sub")).unwrap();
        for f in ["a.wav", "b.MP3", "notes.txt", "sub/c.flac"] {
            std::fs::write(dir.join(f), b"x").unwrap();
        }
        let d = dir.to_str().unwrap();
        let names = |args: &[String]| -> Vec<String> {
            expand(args)
                .unwrap()
                .iter()
                .map(|p| p.strip_prefix(&dir).unwrap().display().to_string())
                .collect()
        };
        assert_eq!(names(&[d.to_owned()]), ["a.wav", "b.MP3", "sub/c.flac"]);
        assert_eq!(
            names(&[format!("{d}/*.wav"), format!("{d}/a.wav")]),
            ["a.wav"]
        );
        assert_eq!(
            names(&[format!("{d}/notes.txt")]),
            ["notes.txt"],
            "named files are taken"
        );
        assert!(expand(&[format!("{d}/*.opus")]).is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn sidecar_rows_win_over_names_and_defaults() {
        let dir = std::env::temp_dir().join(format!("callqa-meta-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let audio = dir.join("rep-1_a.wav");
        std::fs::write(&audio, b"x").unwrap();
        let csv = dir.join("meta.csv");
        std::fs::write(
            &csv,
            "file,rep_id,customer_id,call_date\nrep-1_a.wav,rep-9,,2026-01-05\n",
        )
        .unwrap();
        let m = Metadata::new(Some(&csv), Some("{rep_id}_{call_id}"), MetaRow::default())
            .unwrap()
            .for_file(&audio)
            .unwrap()
            .call;
        assert_eq!(m.rep_id.as_deref(), Some("rep-9"), "the sidecar wins");
        assert_eq!(m.call_id.as_deref(), Some("a"), "then the name");
        assert_eq!(m.customer_id, None);
        assert_eq!(m.call_date, NaiveDate::from_ymd_opt(2026, 1, 5));
        let plain = Metadata::default().for_file(&audio).unwrap();
        assert_eq!(plain.call.call_id, None, "the service derives it");
        assert!(plain.recorded_at.is_some(), "the file's time, for the date");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
