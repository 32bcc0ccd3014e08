//! vCon files: a call and its analyses as JSON (the tadhack calls carry their reference
//! transcripts this way).

use super::{Context, Result};
use std::path::Path;

/// The reference transcript of a vCon file: the `transcript` analysis (paragraphs joined).
pub fn vcon_reference(path: &Path) -> Result<String> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("{}: cannot read", path.display()))?;
    let v: serde_json::Value =
        serde_json::from_str(&text).with_context(|| format!("{}: not JSON", path.display()))?;
    let analyses = v["analysis"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default();
    analyses
        .iter()
        .find(|a| a["type"] == "transcript")
        .and_then(|a| a["body"]["transcript"].as_str())
        .map(|t| {
            t.split("\n\n")
                .map(str::trim)
                .collect::<Vec<_>>()
                .join("\n")
        })
        .with_context(|| format!("{}: no transcript analysis", path.display()))
}
