//! What a request may carry, checked before any work: sizes that keep one request from taking the
//! memory or the time of all the others, and text that the engines cannot take (a NUL in a
//! hotword). Each refusal names the field; the limits are in the README's "Limits" table.

use crate::analysis::playbook::Playbook;
use crate::api::convert;
use crate::proto;
use crate::service::ServiceError;
use crate::transcript::Turn;

/// Hotwords per request, and characters per hotword.
pub const MAX_HOTWORDS: usize = 200;
pub const MAX_HOTWORD_CHARS: usize = 100;
/// Turns of a text transcript, and characters per turn.
pub const MAX_TURNS: usize = 5_000;
pub const MAX_TURN_CHARS: usize = 10_000;
/// Ids (call, rep, customer) and the playbook's name.
pub const MAX_ID_CHARS: usize = 256;

fn invalid(field: &str, why: impl std::fmt::Display) -> ServiceError {
    ServiceError::InvalidArgument(format!("{field}: {why}"))
}

/// Text without control characters other than line breaks and tabs.
fn plain(field: &str, text: &str) -> Result<(), ServiceError> {
    match text
        .chars()
        .find(|c| c.is_control() && !matches!(c, '\n' | '\r' | '\t'))
    {
        Some(c) => Err(invalid(
            field,
            format!("contains the control character {c:?}"),
        )),
        None => Ok(()),
    }
}

fn id(field: &str, value: &str) -> Result<(), ServiceError> {
    if value.chars().count() > MAX_ID_CHARS {
        return Err(invalid(
            field,
            format!("longer than {MAX_ID_CHARS} characters"),
        ));
    }
    plain(field, value)
}

/// Hotwords that Whisper can be primed with.
pub fn hotwords(words: &[String]) -> Result<(), ServiceError> {
    if words.len() > MAX_HOTWORDS {
        return Err(invalid("hotwords", format!("more than {MAX_HOTWORDS}")));
    }
    for (i, w) in words.iter().enumerate() {
        let field = format!("hotwords[{i}]");
        if w.chars().count() > MAX_HOTWORD_CHARS {
            return Err(invalid(
                &field,
                format!("longer than {MAX_HOTWORD_CHARS} characters"),
            ));
        }
        if w.chars().any(char::is_control) {
            return Err(invalid(&field, "contains a control character"));
        }
    }
    Ok(())
}

/// The ids and names of a call.
pub fn call_ids(
    call_id: &str,
    rep_id: &str,
    customer_id: &str,
    playbook: &str,
) -> Result<(), ServiceError> {
    id("call_id", call_id)?;
    id("rep_id", rep_id)?;
    id("customer_id", customer_id)?;
    id("playbook", playbook)
}

/// A playbook sent as TOML text (its size is bounded by `Playbook::parse`).
pub fn playbook_toml(text: &str) -> Result<Playbook, ServiceError> {
    Ok(Playbook::parse(text, "playbook_toml")?)
}

/// The turns of a text transcript, in time order.
pub fn turns(turns: Vec<proto::TranscriptTurn>) -> Result<Vec<Turn>, ServiceError> {
    if turns.len() > MAX_TURNS {
        return Err(invalid("turns", format!("more than {MAX_TURNS}")));
    }
    let mut out = Vec::with_capacity(turns.len());
    for (i, t) in turns.into_iter().enumerate() {
        let field = format!("turns[{i}]");
        if t.end_ms < t.start_ms {
            return Err(invalid(&field, "end_ms is before start_ms"));
        }
        if t.text.chars().count() > MAX_TURN_CHARS {
            return Err(invalid(
                &format!("{field}.text"),
                format!("longer than {MAX_TURN_CHARS} characters"),
            ));
        }
        plain(&format!("{field}.text"), &t.text)?;
        out.push(Turn::text(
            convert::role_from(t.role),
            t.start_ms,
            t.end_ms,
            t.text,
        ));
    }
    out.sort_by_key(|t| t.start_ms);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_text_is_refused_with_its_field() {
        let e = hotwords(&["销\u{0}售易".into()]).unwrap_err().to_string();
        assert!(e.starts_with("hotwords[0]: "), "{e}");
        assert!(hotwords(&["销售易".into(), "Salesforce".into()]).is_ok());
        let long = vec![proto::TranscriptTurn {
            text: "好".repeat(MAX_TURN_CHARS + 1),
            ..Default::default()
        }];
        assert!(
            turns(long)
                .unwrap_err()
                .to_string()
                .starts_with("turns[0].text")
        );
        let back = vec![proto::TranscriptTurn {
            start_ms: 5,
            end_ms: 1,
            ..Default::default()
        }];
        assert!(turns(back).is_err());
        assert!(call_ids("c\u{0}1", "", "", "").is_err());
        let huge = "#".repeat(crate::analysis::playbook::MAX_PLAYBOOK_BYTES + 1);
        assert!(playbook_toml(&huge).is_err());
    }
}
