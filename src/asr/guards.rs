//! Hallucination guards and text clean-up for Whisper output.
//!
//! Whisper invents text on silence and noise: subtitle credits it saw in training, repetition
//! loops, confident nonsense. VAD keeps most silence away; these rules catch what remains.

/// Below this mean token log-probability Whisper decodes the window again, hotter.
pub const LOGPROB_THRESHOLD: f32 = -1.0;

/// Phrases from subtitle credits and video outros that Whisper emits on silence or noise.
/// Compared after `squash` (lower case, no spaces or punctuation).
const CREDITS: &[&str] = &[
    "字幕由amaraorg社群提供",
    "字幕由amaraorg社区提供",
    "subtitlesbytheamaraorgcommunity",
    "amaraorg",
    "请不吝点赞订阅转发打赏支持明镜与点点栏目",
    "明镜与点点",
    "中文字幕志愿者",
    "字幕志愿者",
    "谢谢观看",
    "感谢观看",
    "谢谢大家观看",
    "请订阅我的频道",
    "点赞订阅",
    "thanksforwatching",
    "thankyouforwatching",
    "pleasesubscribe",
    "likeandsubscribe",
    "subtitlesby",
    "captionsby",
];

/// Lower-case letters and digits only: text compared regardless of case, spacing and punctuation.
pub fn squash(text: &str) -> String {
    text.chars()
        .filter(|c| c.is_alphanumeric())
        .flat_map(char::to_lowercase)
        .collect()
}

/// True when the text is (almost) nothing but a subtitle credit.
pub fn is_credit(text: &str) -> bool {
    let mut s = squash(text);
    if s.is_empty() {
        return false;
    }
    let before = s.chars().count();
    for c in CREDITS {
        s = s.replace(c, "");
    }
    let left = s.chars().count();
    left < before && left * 5 <= before // at least 80 % of it was credits
}

/// A Chinese (CJK ideograph) character.
pub fn is_cjk(c: char) -> bool {
    matches!(c as u32, 0x3400..=0x4DBF | 0x4E00..=0x9FFF | 0xF900..=0xFAFF | 0x20000..=0x2FA1F)
}

/// Units to look for loops in: CJK characters one by one, other words whole (with their
/// trailing punctuation), so that "I'm sorry. I'm sorry." repeats as a unit.
fn units(text: &str) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let mut word_start: Option<usize> = None;
    for (i, c) in text.char_indices() {
        if is_cjk(c) {
            if let Some(s) = word_start.take() {
                out.push((s, i));
            }
            out.push((i, i + c.len_utf8()));
        } else if c.is_whitespace() {
            if let Some(s) = word_start.take() {
                out.push((s, i));
            }
        } else if word_start.is_none() {
            word_start = Some(i);
        }
    }
    if let Some(s) = word_start {
        out.push((s, text.len()));
    }
    out
}

/// Cuts repetition loops: a run of `n` units repeated back to back, covering at least 8 units
/// and at least 3 repeats, is kept once. Real speech repeats a word or two ("no, no, no"); a
/// decoder stuck in a loop repeats a phrase over and over.
pub fn cut_repetitions(text: &str) -> String {
    let spans = units(text);
    let key = |i: usize| -> String {
        let (s, e) = spans[i];
        text[s..e]
            .chars()
            .filter(|c| c.is_alphanumeric())
            .flat_map(char::to_lowercase)
            .collect()
    };
    let keys: Vec<String> = (0..spans.len()).map(key).collect();
    let mut keep = vec![true; spans.len()];
    let mut i = 0;
    while i < keys.len() {
        let mut advanced = false;
        for n in 1..=12.min((keys.len() - i) / 3) {
            let mut reps = 1;
            while i + (reps + 1) * n <= keys.len()
                && keys[i + reps * n..i + (reps + 1) * n] == keys[i..i + n]
            {
                reps += 1;
            }
            if reps >= 3 && reps * n >= 8 {
                for k in keep.iter_mut().skip(i + n).take((reps - 1) * n) {
                    *k = false;
                }
                i += reps * n;
                advanced = true;
                break;
            }
        }
        if !advanced {
            i += 1;
        }
    }
    if keep.iter().all(|&k| k) {
        return text.to_owned();
    }
    // Rebuild from the kept units, preserving the text between neighbours that were both kept.
    let mut out = String::new();
    let mut last_end = 0;
    for (idx, &(s, e)) in spans.iter().enumerate().filter(|(idx, _)| keep[*idx]) {
        if idx > 0 && keep[idx - 1] {
            out.push_str(&text[last_end..s]);
        } else if !out.is_empty() && !text[s..].starts_with(is_cjk) {
            out.push(' ');
        }
        out.push_str(&text[s..e]);
        last_end = e;
    }
    if keep.last() == Some(&true) {
        out.push_str(&text[last_end..]);
    }
    out.trim().to_owned()
}

/// Mandarin clean-up: Traditional → Simplified, ASCII punctuation next to Chinese made
/// full-width, as Chinese text is written, and the book-title marks 《》 dropped: Whisper wraps
/// phrases of short clips in them, and a spoken call has no titles to mark.
pub fn normalize_zh(text: &str) -> String {
    let simplified: String = fast2s::convert(text)
        .chars()
        .filter(|&c| c != '《' && c != '》')
        .collect();
    let chars: Vec<char> = simplified.chars().collect();
    let mut out = String::with_capacity(simplified.len());
    for (i, &c) in chars.iter().enumerate() {
        let prev_cjk = i > 0 && is_cjk(chars[i - 1]);
        let next = chars.get(i + 1).copied();
        let wide = match c {
            ',' if prev_cjk || next.is_some_and(is_cjk) => Some('，'),
            '?' if prev_cjk => Some('？'),
            '!' if prev_cjk => Some('！'),
            ':' if prev_cjk => Some('：'),
            ';' if prev_cjk => Some('；'),
            '.' if prev_cjk && !next.is_some_and(|n| n.is_ascii_digit()) => Some('。'),
            _ => None,
        };
        match wide {
            Some(w) => out.push(w),
            // Whisper puts spaces between Chinese phrases; Chinese text has none.
            None if c == ' ' && prev_cjk && next.is_some_and(is_cjk) => out.push('，'),
            None => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subtitle_credits_are_recognised_but_real_speech_is_not() {
        assert!(is_credit("字幕由 Amara.org 社群提供"));
        assert!(is_credit("Thanks for watching!"));
        assert!(is_credit("请不吝点赞 订阅 转发 打赏支持明镜与点点栏目"));
        assert!(!is_credit("谢谢您的来电，我们下周再联系。"));
        assert!(!is_credit(
            "Thanks for watching the demo I sent, what did your team think of the pricing?"
        ));
        assert!(!is_credit(""));
    }

    #[test]
    fn loops_are_cut_and_ordinary_repeats_kept() {
        assert_eq!(
            cut_repetitions("I'm sorry. I'm sorry. I'm sorry. I'm sorry. I'm sorry."),
            "I'm sorry."
        );
        assert_eq!(
            cut_repetitions("No, no, no, that's not what I meant."),
            "No, no, no, that's not what I meant."
        );
        assert_eq!(cut_repetitions("好的好的好的好的好的好的好的好的"), "好的");
        assert_eq!(cut_repetitions("好的好的，明天见。"), "好的好的，明天见。");
        let looped = format!("the price is fine {}", "and then we can talk ".repeat(10));
        assert_eq!(
            cut_repetitions(&looped),
            "the price is fine and then we can talk"
        );
    }

    #[test]
    fn mandarin_is_simplified_with_full_width_punctuation() {
        assert_eq!(
            normalize_zh("歡迎大家來體驗,達摩院推出的語音識別模型."),
            "欢迎大家来体验，达摩院推出的语音识别模型。"
        );
        assert_eq!(normalize_zh("价格是3.5万元,对吗?"), "价格是3.5万元，对吗？");
        assert_eq!(normalize_zh("你好 请问是王先生吗"), "你好，请问是王先生吗");
        assert_eq!(normalize_zh("《广州市》《房地产》中介"), "广州市房地产中介");
        assert_eq!(normalize_zh("CRM system, OK."), "CRM system, OK.");
    }
}
