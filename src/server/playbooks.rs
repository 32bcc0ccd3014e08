//! The playbooks a service offers: the `*.toml` files of a folder, by file name without `.toml`,
//! read again when a file changes. An analysis always names the revision it used.

use crate::analysis::playbook::{Playbook, PlaybookError};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

pub struct Playbooks {
    dir: PathBuf,
    loaded: Mutex<BTreeMap<String, (SystemTime, Arc<Playbook>)>>,
}

#[derive(Debug, thiserror::Error)]
pub enum PlaybookLookupError {
    #[error("no playbook {0:?} (the folder has: {1})")]
    NotFound(String, String),
    #[error("{0}: no *.toml playbooks")]
    Empty(PathBuf),
    #[error(transparent)]
    Invalid(#[from] PlaybookError),
}

impl Playbooks {
    /// Checks every playbook of the folder now, so that a bad one stops the start.
    pub fn open(dir: &Path) -> Result<Self, PlaybookLookupError> {
        let p = Self {
            dir: dir.to_owned(),
            loaded: Mutex::new(BTreeMap::new()),
        };
        let names = p.names();
        if names.is_empty() {
            return Err(PlaybookLookupError::Empty(dir.to_owned()));
        }
        for name in names {
            p.get(&name)?;
        }
        Ok(p)
    }

    pub fn names(&self) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(&self.dir)
            .into_iter()
            .flatten()
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|e| e == "toml"))
            .filter_map(|p| p.file_stem().map(|s| s.to_string_lossy().into_owned()))
            .collect();
        names.sort();
        names
    }

    /// The playbook `name`; an empty name means the only one (or the one called `default`).
    pub fn get(&self, name: &str) -> Result<Arc<Playbook>, PlaybookLookupError> {
        let names = self.names();
        let name = match (name, names.as_slice()) {
            ("", [only]) => only.clone(),
            ("", _) => "default".to_owned(),
            (n, _) => n.to_owned(),
        };
        if !names.contains(&name) {
            return Err(PlaybookLookupError::NotFound(name, names.join(", ")));
        }
        let path = self.dir.join(format!("{name}.toml"));
        let modified = std::fs::metadata(&path)
            .and_then(|m| m.modified())
            .unwrap_or(SystemTime::UNIX_EPOCH);
        let mut loaded = self.loaded.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((at, p)) = loaded.get(&name)
            && *at == modified
        {
            return Ok(p.clone());
        }
        let p = Arc::new(Playbook::load(&path)?);
        loaded.insert(name, (modified, p.clone()));
        Ok(p)
    }
}
