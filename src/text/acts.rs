//! What a sentence does, told from its words: does it ask for something (a question or a
//! request: "电话告诉我一下", "could you send me the address"), and does it state a value for a
//! topic ("评分是5分", "人均消费50-100元") rather than ask about it. Chinese and English.
//!
//! Key questions use these with the topic of a question: "价格是多少" asks about the price;
//! "找一家价格300-400元的酒店" names one and asks for no price.

use crate::asr::guards::is_cjk;

/// Words and phrases that make a Chinese clause a question or a request.
#[rustfmt::skip]
const ZH_ASKING: &[&str] = &[
    "吗", "么", "多少", "什么", "啥", "哪", "几", "怎么", "怎样", "如何", "是否", "有没有",
    "能不能", "可不可以", "是不是", "告诉", "给我", "发我", "发给", "说一下", "讲一下", "说说",
    "查一下", "查下", "查询", "查查", "问一下", "看一下", "看看", "介绍", "提供", "想知道",
    "了解一下",
];
/// English words that open a question.
#[rustfmt::skip]
const EN_QUESTION_WORDS: &[&str] = &[
    "what", "where", "when", "which", "who", "whom", "whose", "why", "how", "can", "could",
    "would", "will", "do", "does", "did", "is", "are", "was", "were", "may", "should",
    "shall", "have", "has",
];
/// English phrases that make a request without a question mark.
#[rustfmt::skip]
const EN_REQUESTS: &[&str] = &[
    "tell me", "give me", "send me", "get me", "let me know", "i need", "i'd like",
    "i would like", "i want", "please provide", "can i get", "may i have", "i'd need",
    "need to know", "want to know", "wondering",
];

/// Does the clause ask a question or make a request?
pub fn asks(clause: &str) -> bool {
    if clause.contains(['?', '？']) {
        return true;
    }
    if clause.chars().any(is_cjk) {
        return ZH_ASKING.iter().any(|w| clause.contains(w)) || clause.ends_with('呢');
    }
    let lower = clause.to_lowercase();
    // "what's" opens a question as "what" does.
    let first = lower
        .split(|c: char| !c.is_alphanumeric())
        .find(|w| !w.is_empty());
    first.is_some_and(|w| EN_QUESTION_WORDS.contains(&w))
        || EN_REQUESTS.iter().any(|p| lower.contains(p))
}

/// Characters of a Chinese value: numbers, ranges and units, "free", "above"/"below".
fn is_value_char(c: char) -> bool {
    c.is_ascii_digit()
        || "零一二三四五六七八九十两百千万亿.-~–—到至元块分星级小时天以上下内左右".contains(c)
}

/// Does the text right after a topic state its value ("是5分", "在100到150元之间", "免费",
/// "50-100元")? Only a value given at once counts: "评分是多少" asks.
pub fn states_value(after_topic: &str) -> bool {
    let rest = after_topic.trim_start();
    let rest = [
        "最好是",
        "要求是",
        "是",
        "在",
        "为",
        "有",
        "要",
        "：",
        ":",
        "大概",
        "大约",
    ]
    .iter()
    .find_map(|p| rest.strip_prefix(p))
    .unwrap_or(rest)
    .trim_start();
    if rest.starts_with("免费") {
        return true;
    }
    let value: String = rest.chars().take_while(|&c| is_value_char(c)).collect();
    // A number: digits, or numerals with a unit ("两百元"; "一下" is no value).
    let digits = value.chars().any(|c| c.is_ascii_digit());
    let numerals = value
        .chars()
        .any(|c| "零一二三四五六七八九十两百千万".contains(c))
        && value.chars().any(|c| "元块分星级小时天".contains(c));
    (digits || numerals) && !value.starts_with(['到', '至', '以'])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn questions_and_requests_ask() {
        for s in [
            "电话号码是多少",
            "把电话告诉我一下",
            "帮我查下它的地址与电话",
            "营业时间呢",
            "Could you send me the address",
            "I need the phone number",
            "what's the price",
            "價格貴不貴？",
        ] {
            assert!(asks(s), "{s}");
        }
        for s in [
            "我想找一家评分5分的酒店",
            "好的谢谢",
            "The hotel is in the north",
            "Thanks, that's all",
        ] {
            assert!(!asks(s), "{s}");
        }
    }

    #[test]
    fn a_value_after_the_topic_is_a_statement() {
        for after in [
            "是5分",
            "在100到150元之间",
            "50-100元的餐馆",
            "免费的景点",
            "有4.5分以上吗",
            "是两百元",
        ] {
            assert!(states_value(after), "{after}");
        }
        for after in [
            "是多少",
            "怎么样",
            "和电话",
            "",
            "是几分",
            "吗",
            "一下",
            "一起告诉我",
        ] {
            assert!(!states_value(after), "{after}");
        }
    }
}
