//! Parse errors in a QA lead's words: the field's path and line, and what was expected.

/// The path of the key at byte `at` of a TOML text, as validation names fields:
/// `dimensions[2].pass_threshold`. Tables and arrays of tables above it give the prefix.
pub(super) fn field_at(text: &str, at: usize) -> Option<String> {
    let line_start = text[..at].rfind('\n').map_or(0, |i| i + 1);
    let before = &text[line_start..at];
    let line = text[line_start..].lines().next().unwrap_or_default();
    // The key: the last `name =` before the error on its line (inline tables hold several).
    let key_text = if before.contains('=') { before } else { line };
    let key = key_text
        .rsplit_once('=')
        .map(|(k, _)| k)?
        .rsplit(['{', ',', '['])
        .next()?
        .trim()
        .trim_matches('"');
    if key.is_empty() || key.contains(char::is_whitespace) {
        return None;
    }
    let mut table = String::new();
    let mut counts: std::collections::HashMap<String, usize> = Default::default();
    for l in text[..line_start].lines().map(str::trim) {
        if let Some(name) = l.strip_prefix("[[").and_then(|l| l.strip_suffix("]]")) {
            let n = counts.entry(name.to_owned()).or_insert(0);
            table = format!("{name}[{n}]");
            *n += 1;
        } else if let Some(name) = l.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            table = name.to_owned();
        }
    }
    Some(if table.is_empty() {
        key.to_owned()
    } else {
        format!("{table}.{key}")
    })
}

/// toml's messages in a QA lead's words: "expected a number, found the text "60"".
pub(super) fn plain_words(message: &str) -> String {
    let Some(rest) = message.strip_prefix("invalid type: ") else {
        return message.to_owned();
    };
    let Some((found, expected)) = rest.split_once(", expected ") else {
        return message.to_owned();
    };
    let expected = match expected {
        "f32" | "f64" | "u32" | "u64" | "usize" | "i32" | "i64" => "a number",
        "a boolean" => "true or false",
        "a sequence" => "a list [ … ]",
        "a string" => "text in quotes",
        e if e.starts_with("struct ") || e == "a map" => "a table",
        e => e,
    };
    let found = if let Some(t) = found.strip_prefix("string ") {
        format!("the text {t}")
    } else if let Some(n) = found
        .strip_prefix("integer ")
        .or(found.strip_prefix("floating point "))
    {
        format!("the number {}", n.trim_matches('`'))
    } else if let Some(b) = found.strip_prefix("boolean ") {
        b.trim_matches('`').to_owned()
    } else {
        found.to_owned()
    };
    format!("expected {expected}, found {found}")
}
