//! The options resolved, once, into what the library takes: the model folder, the Whisper pool's
//! shape, VAD parameters, the store, a call's metadata. Defaults that depend on the machine (the
//! cores, the home folder) are decided here and nowhere else.

use super::args::{CallArgs, ModelArgs, StoreArgs, VadArgs, WhisperArgs};
use anyhow::{Context, Result};
use callqa::asr::pool::PoolConfig;
use callqa::audio::vad::VadParams;
use callqa::models::ModelDir;
use callqa::report::Lang;
use callqa::service::CallMeta;
use callqa::service::engines::{self, WhisperChoice};
use callqa::store::SqliteStore;
use std::ffi::OsString;
use std::path::PathBuf;

impl ModelArgs {
    pub fn dir(&self) -> ModelDir {
        ModelDir {
            path: self.model_dir.clone(),
            onnxruntime_lib: self.onnxruntime_lib.clone(),
        }
    }

    /// The same options for a callqa process this one starts.
    pub fn forwarded(&self) -> Vec<OsString> {
        let mut out = vec!["--model-dir".into(), self.model_dir.clone().into()];
        if let Some(lib) = &self.onnxruntime_lib {
            out.extend(["--onnxruntime-lib".into(), lib.into()]);
        }
        out
    }
}

impl WhisperArgs {
    pub fn choice(&self) -> WhisperChoice {
        WhisperChoice::parse(&self.whisper_model)
    }

    /// States × threads: by default one state per core, one thread each.
    pub fn pool(&self) -> PoolConfig {
        let cores = engines::cores();
        let mut pool = PoolConfig::for_cores(cores);
        if let Some(states) = self.whisper_states {
            pool.states = states.max(1);
        }
        pool.threads_per_state = self.threads.unwrap_or((cores / pool.states).max(1));
        pool.dtw = !self.no_dtw;
        pool
    }

    /// The same choices, resolved, for a callqa process this one starts.
    pub fn forwarded(&self) -> Vec<OsString> {
        let pool = self.pool();
        let mut out: Vec<OsString> = vec![
            "--whisper-model".into(),
            self.whisper_model.clone().into(),
            "--whisper-states".into(),
            pool.states.to_string().into(),
            "--threads".into(),
            pool.threads_per_state.to_string().into(),
        ];
        if !pool.dtw {
            out.push("--no-dtw".into());
        }
        out
    }
}

impl VadArgs {
    pub fn params(&self) -> VadParams {
        VadParams {
            threshold: self.vad_threshold,
            neg_threshold: (self.vad_threshold - 0.15).max(0.01),
            min_silence_ms: self.vad_min_silence_ms,
            speech_pad_ms: self.vad_pad_ms,
            ..VadParams::default()
        }
    }
}

impl StoreArgs {
    /// The store named, or the default one.
    pub fn path(&self) -> PathBuf {
        self.store.clone().unwrap_or_else(|| {
            std::env::var_os("HOME")
                .map_or_else(|| PathBuf::from("."), PathBuf::from)
                .join(".local/share/callqa/callqa.db")
        })
    }

    /// The store, created if need be (for the commands that write).
    pub fn open(&self) -> Result<SqliteStore> {
        let path = self.path();
        SqliteStore::open(&path).with_context(|| format!("store {}", path.display()))
    }

    /// The store, which must exist: the commands that only read never create one.
    pub fn open_existing(&self) -> Result<SqliteStore> {
        Ok(SqliteStore::open_existing(&self.path())?)
    }

    /// The store, only when one was named (`--store` or `CALLQA_STORE`).
    pub fn open_if_named(&self) -> Result<Option<SqliteStore>> {
        self.store.as_ref().map(|_| self.open()).transpose()
    }
}

impl CallArgs {
    pub fn meta(&self) -> CallMeta {
        CallMeta {
            call_id: self.call_id.clone(),
            rep_id: self.rep_id.clone(),
            customer_id: self.customer_id.clone(),
            call_date: self.call_date,
        }
    }
}

/// The language asked for, else the locale's (LC_ALL, LC_MESSAGES, LANG), else English.
pub fn lang(asked: Option<Lang>) -> Lang {
    asked.unwrap_or_else(|| {
        ["LC_ALL", "LC_MESSAGES", "LANG"]
            .iter()
            .find_map(|v| std::env::var(v).ok().filter(|s| !s.is_empty()))
            .map_or(Lang::En, |locale| Lang::from_locale(&locale))
    })
}
