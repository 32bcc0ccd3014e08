//! E-mail addresses, written or spoken.

use regex::Regex;
use std::sync::LazyLock;

pub(super) fn has_email_context(text: &str) -> bool {
    static WORDS: LazyLock<Regex> =
        LazyLock::new(|| Regex::new(r"(?i)邮箱|邮件|\be-?mail\b").expect("a valid pattern"));
    WORDS.is_match(text)
}

/// E-mail addresses, written (a.b@c.com) or spoken ("a dot b at c dot com", "艾特", "点"). When
/// the talk is of e-mail (`context` up to a byte), an address whose "at" ASR lost
/// ("patrisha.floorisexample.com") counts too.
pub(super) fn emails(text: &str, context: impl Fn(usize) -> bool) -> Vec<(usize, usize, String)> {
    static NO_AT: LazyLock<Regex> = LazyLock::new(|| {
        Regex::new(r"(?i)[a-z0-9][a-z0-9._-]*\.(?:com|net|org|cn)\b").expect("a valid pattern")
    });
    // No \b before an address: Chinese text runs straight into it (邮箱是abc@qq.com), and the
    // leftmost match starts at its first letter anyway.
    static EMAIL: LazyLock<Regex> = LazyLock::new(|| {
        let dot = r"\s*(?:\.|\bdot\b|点)\s*";
        Regex::new(&format!(
            r"(?i)([a-z0-9][a-z0-9._%+-]*(?:{dot}[a-z0-9_-]+)*)\s*(?:@|\bat\b|艾特)\s*([a-z0-9-]+(?:{dot}[a-z0-9-]+)*?){dot}(com|net|org|edu|gov|cn|io|co|info|biz|me|us|uk)\b"
        ))
        .expect("a valid pattern")
    });
    static DOT: LazyLock<Regex> =
        LazyLock::new(|| Regex::new(r"(?i)\s*(?:\.|\bdot\b|点)\s*").expect("a valid pattern"));
    let mut out: Vec<(usize, usize, String)> = EMAIL
        .captures_iter(text)
        .filter_map(|c| {
            let all = c.get(0)?;
            let part = |i: usize| DOT.replace_all(&c[i], ".").to_lowercase();
            let value = format!("{}@{}.{}", part(1), part(2), c[3].to_lowercase());
            Some((all.start(), all.end(), value))
        })
        .collect();
    for m in NO_AT.find_iter(text) {
        let inside = out.iter().any(|&(s, e, _)| s < m.end() && m.start() < e);
        if !inside && context(m.start()) {
            out.push((m.start(), m.end(), m.as_str().to_lowercase()));
        }
    }
    out
}
