//! What a batch works on: the recordings named by files, folders (recursively) and globs, and
//! each one's call metadata, from a sidecar file, the file name, or defaults.

use chrono::NaiveDate;
use serde::Deserialize;
use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};

/// File extensions taken from folders (a file named explicitly is always taken).
const AUDIO_EXTENSIONS: &[&str] = &[
    "wav", "mp3", "m4a", "mp4", "aac", "flac", "ogg", "oga", "opus", "webm", "mkv", "mka",
];

/// Every recording the arguments name, sorted and without repeats.
pub fn expand(args: &[String]) -> Result<Vec<PathBuf>, String> {
    let mut found = BTreeSet::new();
    for arg in args {
        let path = Path::new(arg);
        if path.is_dir() {
            walk(path, &mut found).map_err(|e| format!("{arg}: {e}"))?;
        } else if path.exists() {
            found.insert(path.to_owned());
        } else {
            let matches = glob::glob(arg).map_err(|e| format!("{arg}: {e}"))?;
            let before = found.len();
            for m in matches {
                let m = m.map_err(|e| format!("{arg}: {e}"))?;
                if m.is_dir() {
                    walk(&m, &mut found).map_err(|e| format!("{}: {e}", m.display()))?;
                } else {
                    found.insert(m);
                }
            }
            if found.len() == before {
                return Err(format!("{arg}: no such file, folder or matching recording"));
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

/// What is known about one call besides its audio. Empty fields take defaults.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CallMeta {
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

impl CallMeta {
    /// Fields set here win over `other`'s.
    fn or(self, other: CallMeta) -> CallMeta {
        CallMeta {
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
    rows: Vec<CallMeta>,
    pattern: Option<NamePattern>,
    /// What applies to every call unless its row or name says otherwise (the CLI's flags).
    fallback: CallMeta,
}

impl Metadata {
    /// `sidecar`: a CSV with a header (`file` and any of call_id, rep_id, customer_id,
    /// agent_channel, call_date) or a JSON array of such objects.
    pub fn new(
        sidecar: Option<&Path>,
        pattern: Option<&str>,
        fallback: CallMeta,
    ) -> Result<Self, String> {
        let rows = match sidecar {
            None => Vec::new(),
            Some(path) => read_sidecar(path).map_err(|e| format!("{}: {e}", path.display()))?,
        };
        let pattern = pattern.map(NamePattern::parse).transpose()?;
        Ok(Self {
            rows,
            pattern,
            fallback,
        })
    }

    /// The call's metadata: its sidecar row, then what the name pattern reads from the file
    /// name, then the fallback, then defaults (call id: the file stem; date: the file's
    /// modification day).
    pub fn for_file(&self, path: &Path) -> Result<CallMeta, String> {
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
            Some(p) => p
                .read(&stem)
                .ok_or_else(|| format!("the file name {stem:?} does not match the name pattern"))?,
            None => CallMeta::default(),
        };
        let modified = std::fs::metadata(path)
            .and_then(|m| m.modified())
            .ok()
            .map(|t| chrono::DateTime::<chrono::Local>::from(t).date_naive());
        let defaults = CallMeta {
            call_id: Some(stem),
            call_date: modified,
            ..CallMeta::default()
        };
        Ok(CallMeta {
            file: path.display().to_string(),
            ..row.or(from_name).or(self.fallback.clone()).or(defaults)
        })
    }
}

fn read_sidecar(path: &Path) -> Result<Vec<CallMeta>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| e.to_string())?;
    let is_json =
        path.extension().is_some_and(|e| e == "json") || text.trim_start().starts_with('[');
    let rows: Vec<CallMeta> = if is_json {
        serde_json::from_str(&text).map_err(|e| e.to_string())?
    } else {
        csv::Reader::from_reader(text.as_bytes())
            .deserialize()
            .collect::<Result<_, _>>()
            .map_err(|e| e.to_string())?
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
    pub fn parse(pattern: &str) -> Result<Self, String> {
        let mut pieces = pattern.split('{');
        let head = pieces.next().unwrap_or_default().to_owned();
        let mut parts = Vec::new();
        for piece in pieces {
            let (field, literal) = piece
                .split_once('}')
                .ok_or_else(|| format!("name pattern {pattern:?}: a {{ without its }}"))?;
            if !FIELDS.contains(&field) {
                return Err(format!(
                    "name pattern {pattern:?}: unknown field {{{field}}} (known: {})",
                    FIELDS.join(", ")
                ));
            }
            if literal.is_empty() && parts.len() + 1 < pattern.matches('{').count() {
                return Err(format!(
                    "name pattern {pattern:?}: fields need text between them"
                ));
            }
            parts.push((field.to_owned(), literal.to_owned()));
        }
        Ok(Self { head, parts })
    }

    /// The fields of a file stem, or None when it does not fit the pattern.
    pub fn read(&self, stem: &str) -> Option<CallMeta> {
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
        Some(CallMeta {
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
        let m = Metadata::new(Some(&csv), Some("{rep_id}_{call_id}"), CallMeta::default())
            .unwrap()
            .for_file(&audio)
            .unwrap();
        assert_eq!(m.rep_id.as_deref(), Some("rep-9"), "the sidecar wins");
        assert_eq!(m.call_id.as_deref(), Some("a"), "then the name");
        assert_eq!(m.customer_id, None);
        assert_eq!(m.call_date, NaiveDate::from_ymd_opt(2026, 1, 5));
        let plain = Metadata::default().for_file(&audio).unwrap();
        assert_eq!(
            plain.call_id.as_deref(),
            Some("rep-1_a"),
            "default: the stem"
        );
        assert!(plain.call_date.is_some(), "default: the file's day");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
