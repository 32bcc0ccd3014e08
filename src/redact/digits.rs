//! Digits as ASR writes them: figures (full-width too), Chinese numerals with 幺, English number
//! words with double/triple, grouped by spaces, dashes or commas, gathered into runs.

/// A run of digits in a text, however they were written, with its byte range.
#[derive(Debug, Clone)]
pub(super) struct Run {
    pub(super) digits: String,
    pub(super) plus: bool,
    pub(super) start: usize,
    pub(super) end: usize,
    /// Nothing but punctuation before it / after it in the turn.
    pub(super) at_start: bool,
    pub(super) at_end: bool,
    /// Where a separator came between digits: (digits before it, byte where the next group
    /// starts, byte where the previous one ended). Two numbers said one after the other meet there.
    pub(super) groups: Vec<(usize, usize, usize)>,
}

/// One token of a text: a digit (with the bytes it covers) or something else.
enum Token {
    Digit(char, usize, usize),
    /// "double" / "triple" before a digit word.
    Repeat(usize),
    /// Spaces and the punctuation that groups digits.
    Separator,
    /// Groups spoken digits ("four zero one, five five five"), but separates written numbers
    /// ("81732276,4007328080" is two).
    Comma,
    Plus,
    Other,
}

fn spoken_digit(word: &str) -> Option<char> {
    Some(match word {
        "zero" => '0',
        "one" => '1',
        "two" => '2',
        "three" => '3',
        "four" => '4',
        "five" => '5',
        "six" => '6',
        "seven" => '7',
        "eight" => '8',
        "nine" => '9',
        _ => return None,
    })
}

fn han_digit(c: char) -> Option<char> {
    Some(match c {
        '零' | '〇' => '0',
        '一' | '幺' => '1',
        '二' => '2',
        '三' => '3',
        '四' => '4',
        '五' => '5',
        '六' => '6',
        '七' => '7',
        '八' => '8',
        '九' => '9',
        _ => return None,
    })
}

fn tokens(text: &str) -> Vec<Token> {
    let mut out = Vec::new();
    let mut chars = text.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        let end = i + c.len_utf8();
        if c.is_ascii_alphabetic() {
            // A whole ASCII word.
            let mut j = end;
            while let Some(&(k, d)) = chars.peek() {
                if !d.is_ascii_alphabetic() {
                    break;
                }
                j = k + d.len_utf8();
                chars.next();
            }
            let word = text[i..j].to_ascii_lowercase();
            out.push(match word.as_str() {
                "double" => Token::Repeat(2),
                "triple" => Token::Repeat(3),
                // "oh" is a zero only between digits; `runs` checks that.
                "oh" | "o" => Token::Digit('o', i, j),
                w => spoken_digit(w).map_or(Token::Other, |d| Token::Digit(d, i, j)),
            });
            continue;
        }
        out.push(match c {
            '0'..='9' => Token::Digit(c, i, end),
            '０'..='９' => {
                Token::Digit(char::from(b'0' + (c as u32 - '０' as u32) as u8), i, end)
            }
            '+' | '＋' => Token::Plus,
            ',' | '，' | '、' => Token::Comma,
            ' ' | '-' | '–' | '—' | '(' | ')' | '（' | '）' | '.' | '/' => Token::Separator,
            c => han_digit(c).map_or(Token::Other, |d| Token::Digit(d, i, end)),
        });
    }
    out
}

/// Digits that belong together: at most two separators between neighbours, and a spoken "oh"
/// only inside a run. An 'X' right after 17 digits is an ID number's check character.
pub(super) fn digit_runs(text: &str) -> Vec<Run> {
    let toks = tokens(text);
    let mut runs: Vec<Run> = Vec::new();
    let mut cur: Option<Run> = None;
    let mut gap = 0;
    let mut plus = false;
    let mut repeat = 1;
    // Whether the last digit was written as a figure (not a numeral or a word).
    let mut written = false;
    let flush = |cur: &mut Option<Run>, runs: &mut Vec<Run>| {
        if let Some(mut r) = cur.take() {
            while r.digits.ends_with('o') {
                r.digits.pop();
            }
            if !r.digits.is_empty() {
                runs.push(r);
            }
        }
    };
    for t in &toks {
        match *t {
            Token::Digit(d, s, e) => {
                if d == 'o' && cur.is_none() {
                    plus = false;
                    continue;
                }
                let d = if d == 'o' { '0' } else { d };
                let r = cur.get_or_insert_with(|| Run {
                    digits: String::new(),
                    plus,
                    start: s,
                    end: e,
                    at_start: false,
                    at_end: false,
                    groups: Vec::new(),
                });
                if gap > 0 {
                    r.groups.push((r.digits.len(), s, r.end));
                }
                for _ in 0..repeat {
                    r.digits.push(d);
                }
                written = text[s..e]
                    .chars()
                    .all(|c| c.is_ascii_digit() || ('０'..='９').contains(&c));
                r.end = e;
                gap = 0;
                repeat = 1;
                plus = false;
            }
            Token::Repeat(n) => repeat = n,
            Token::Comma if written => flush(&mut cur, &mut runs),
            Token::Separator | Token::Comma if cur.is_some() => {
                gap += 1;
                if gap > 2 {
                    flush(&mut cur, &mut runs);
                }
            }
            Token::Separator | Token::Comma => {}
            Token::Plus => {
                flush(&mut cur, &mut runs);
                plus = true;
            }
            Token::Other => {
                // An ID number may end in X.
                let x = cur.as_ref().is_some_and(|r| {
                    r.digits.len() == 17 && matches!(text[r.end..].chars().next(), Some('X' | 'x'))
                });
                if x && let Some(r) = cur.as_mut() {
                    r.digits.push('X');
                    r.end += 1;
                }
                flush(&mut cur, &mut runs);
                plus = false;
                repeat = 1;
            }
        }
    }
    flush(&mut cur, &mut runs);
    let only_punct = |s: &str| {
        s.chars()
            .all(|c| !c.is_alphanumeric() && han_digit(c).is_none())
    };
    for r in &mut runs {
        r.at_start = only_punct(&text[..r.start]);
        r.at_end = only_punct(&text[r.end..]);
    }
    runs
}
