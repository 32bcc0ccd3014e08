//! Names that speakers give as their own.

use regex::Regex;
use std::sync::LazyLock;

/// Names that a speaker gives as their own: "my name is Ann Wilson", "我叫王小明", "我姓李".
pub(super) fn names(text: &str) -> Vec<(usize, usize, String)> {
    static EN: LazyLock<Regex> = LazyLock::new(|| {
        Regex::new(concat!(
            r"(?i:\bmy name is|\bmy name's|\bi am called)\s+([A-Z][a-z]+(?:[ -][A-Z][a-z]+){0,2})",
            // "I'm" alone says too little: only with a first and a last name.
            r"|\b(?:I'm|I’m|I am)\s+([A-Z][a-z]+ [A-Z][a-z]+)\b"
        ))
        .expect("a valid pattern")
    });
    static ZH: LazyLock<Regex> = LazyLock::new(|| {
        Regex::new(r"(?:我叫|我的名字是|我的名字叫|本人叫|我姓)\s*(\p{Han}{1,3})")
            .expect("a valid pattern")
    });
    // Characters that end a Chinese name: function words and titles.
    const NOT_NAME: &str = "的了吗呢吧啊呀是在不也就都还很有个先女姐生士老师经理总";
    // Characters no name starts with: function words, numerals, verbs of 叫 a taxi.
    const NOT_FIRST: &str = "的了吗呢吧啊呀是在不也就都还很有个一两几下上辆车出从到去来";
    let mut out = Vec::new();
    for c in EN.captures_iter(text) {
        if let Some(m) = c.get(1).or_else(|| c.get(2)) {
            out.push((m.start(), m.end(), m.as_str().to_owned()));
        }
    }
    for c in ZH.captures_iter(text) {
        let (Some(all), Some(m)) = (c.get(0), c.get(1)) else {
            continue;
        };
        // 帮我叫一辆车: 叫 is "call (a taxi)" here.
        if text[..all.start()].ends_with(['帮', '给', '替', '请', '为', '让']) {
            continue;
        }
        let surname_only = all.as_str().contains('姓');
        let mut end = m.start();
        for (k, ch) in m.as_str().char_indices() {
            // After 我姓 only the surname; after 我叫 a title or a function word ends it.
            let stop = k > 0 && (surname_only || NOT_NAME.contains(ch));
            if stop || (k == 0 && NOT_FIRST.contains(ch)) {
                break;
            }
            end = m.start() + k + ch.len_utf8();
        }
        if end > m.start() {
            out.push((m.start(), end, text[m.start()..end].to_owned()));
        }
    }
    out
}
