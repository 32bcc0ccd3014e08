//! What a playbook asks to redact, and how.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PiiClass {
    Phone,
    IdCard,
    BankCard,
    Email,
    /// A name the speaker gives as theirs ("my name is …", "我叫…").
    Name,
}

/// How redacted PII is written: `[PHONE]`, `138****5678`, or not at all.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RedactionMode {
    #[default]
    Mask,
    Partial,
    None,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Redaction {
    #[serde(default)]
    pub classes: Vec<PiiClass>,
    #[serde(default)]
    pub mode: RedactionMode,
    /// Keep the unredacted turns too, in the store only, readable only with an API key that
    /// has the `pii` permission.
    #[serde(default)]
    pub keep_original: bool,
}
