//! Accuracy metrics: word error rate (English) and character error rate (Chinese).

/// Lower-cases and strips punctuation, the usual normalisation before scoring.
pub fn normalize_for_scoring(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c.is_alphanumeric() || c == '\'' || c.is_whitespace() {
                c.to_lowercase().next().unwrap_or(c)
            } else {
                ' '
            }
        })
        .collect()
}

fn edit_distance<T: PartialEq>(a: &[T], b: &[T]) -> usize {
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    let mut cur = vec![0; b.len() + 1];
    for (i, x) in a.iter().enumerate() {
        cur[0] = i + 1;
        for (j, y) in b.iter().enumerate() {
            cur[j + 1] = (prev[j] + usize::from(x != y))
                .min(prev[j + 1] + 1)
                .min(cur[j] + 1);
        }
        std::mem::swap(&mut prev, &mut cur);
    }
    prev[b.len()]
}

/// Errors and reference length, so that rates can be pooled over a corpus.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ErrorCount {
    pub errors: usize,
    pub reference_len: usize,
}

impl ErrorCount {
    pub fn rate(&self) -> f64 {
        self.errors as f64 / self.reference_len.max(1) as f64
    }
}

impl std::ops::Add for ErrorCount {
    type Output = ErrorCount;
    fn add(self, other: ErrorCount) -> ErrorCount {
        ErrorCount {
            errors: self.errors + other.errors,
            reference_len: self.reference_len + other.reference_len,
        }
    }
}

pub fn word_errors(reference: &str, hypothesis: &str) -> ErrorCount {
    let r: Vec<String> = normalize_for_scoring(reference)
        .split_whitespace()
        .map(str::to_owned)
        .collect();
    let h: Vec<String> = normalize_for_scoring(hypothesis)
        .split_whitespace()
        .map(str::to_owned)
        .collect();
    ErrorCount {
        errors: edit_distance(&r, &h),
        reference_len: r.len(),
    }
}

pub fn char_errors(reference: &str, hypothesis: &str) -> ErrorCount {
    let chars = |s: &str| -> Vec<char> {
        normalize_for_scoring(s)
            .chars()
            .filter(|c| !c.is_whitespace())
            .collect()
    };
    let (r, h) = (chars(reference), chars(hypothesis));
    ErrorCount {
        errors: edit_distance(&r, &h),
        reference_len: r.len(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wer_ignores_case_and_punctuation() {
        let e = word_errors("And so, my fellow Americans.", "and so my fellow americans");
        assert_eq!(e.errors, 0);
        assert_eq!(word_errors("a b c d", "a x c").errors, 2);
        assert_eq!(word_errors("a b c d", "a x c").reference_len, 4);
    }

    #[test]
    fn cer_counts_characters() {
        let e = char_errors("广州市房地产", "广州是房地产。");
        assert_eq!((e.errors, e.reference_len), (1, 6));
    }
}
