//! The playbook: what "a good call" means for one sales scenario, as a versioned TOML file.
//!
//! Parsing refuses unknown fields and wrong types (the TOML error names the key and its line);
//! `validate` then checks the values and names the offending field, e.g.
//! `competitors[2].name: must not be empty`. The revision is a hash of the file's content, recorded
//! with every analysis so that old scores stay interpretable.

mod errors;

use crate::audio::channels::Role;
use crate::redact::Redaction;
use errors::{field_at, plain_words};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::path::Path;

/// Who a rule applies to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Speaker {
    Agent,
    Customer,
    Any,
}

impl Speaker {
    /// Whether a turn by `role` can satisfy a rule for this speaker. A turn of unknown role
    /// (a mono recording) is given the benefit of the doubt; only the other side is excluded.
    pub fn covers(self, role: Role) -> bool {
        match self {
            Speaker::Any => true,
            Speaker::Agent => role != Role::Customer,
            Speaker::Customer => role != Role::Agent,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Playbook {
    /// The scenario, e.g. "SaaS CRM 新客户首次电话".
    pub name: String,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub key_questions: Vec<KeyQuestion>,
    #[serde(default)]
    pub competitors: Vec<Competitor>,
    #[serde(default)]
    pub emotion: EmotionRules,
    #[serde(default)]
    pub dimensions: Vec<Dimension>,
    #[serde(default)]
    pub coaching: Coaching,
    #[serde(default)]
    pub redaction: Redaction,
    /// Content hash of the file this playbook was read from (set on load, never in the file).
    #[serde(skip_deserializing, default)]
    pub revision: String,
}

/// A question the call should contain (关键话术).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyQuestion {
    pub id: String,
    #[serde(default)]
    pub description: String,
    /// Example phrasings, in any language; a sentence matches by meaning or by asking about their
    /// topic (see `analysis::questions`).
    pub phrasings: Vec<String>,
    #[serde(default = "agent")]
    pub asked_by: Speaker,
    /// Must be asked within this many minutes of the start of the call.
    #[serde(default)]
    pub within_minutes: Option<f64>,
    #[serde(default = "one")]
    pub min_count: u32,
    /// Cosine similarity a turn needs to count as this question; default: the calibrated value.
    #[serde(default)]
    pub threshold: Option<f32>,
}

/// A competitor whose mention the call must handle (竞品).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Competitor {
    pub name: String,
    /// Other names: Chinese names, abbreviations, common ASR misspellings.
    #[serde(default)]
    pub aliases: Vec<String>,
    #[serde(default = "customer")]
    pub mentioned_by: Speaker,
    /// The response playbook (应对策略包) to push when this competitor comes up.
    #[serde(default)]
    pub strategy_pack: Option<StrategyPack>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct StrategyPack {
    pub title: String,
    #[serde(default)]
    pub content: String,
    #[serde(default)]
    pub link: String,
}

/// Alert thresholds for emotion scores (0–1).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EmotionRules {
    #[serde(default = "seven_tenths")]
    pub frustration_alert: f32,
    #[serde(default = "seven_tenths")]
    pub perfunctory_alert: f32,
    #[serde(default = "customer_only")]
    pub roles: Vec<Speaker>,
}

impl Default for EmotionRules {
    fn default() -> Self {
        Self {
            frustration_alert: 0.7,
            perfunctory_alert: 0.7,
            roles: vec![Speaker::Customer],
        }
    }
}

/// A skill dimension of the scorecard: 0–100 from weighted signals.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Dimension {
    pub id: String,
    pub name: String,
    pub signals: Vec<WeightedSignal>,
    /// Score (0–100) needed to pass.
    pub pass_threshold: f32,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WeightedSignal {
    pub signal: String,
    pub weight: f32,
}

/// The signals a dimension can be built from. `question:<id>` names one key question.
pub const SIGNALS: &[&str] = &[
    "key_question_coverage",
    "competitor_response",
    "objection_response",
    "customer_frustration",
    "customer_perfunctory",
    "agent_talk_ratio",
    "agent_longest_monologue",
    "interruptions_by_agent",
    "agent_response_latency",
    "customer_questions",
    "needs_captured",
    "next_step_commitment",
];

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Coaching {
    /// Also judge a dimension on its average over a rep's last N calls.
    #[serde(default = "five")]
    pub rolling_window: u32,
    #[serde(default)]
    pub rules: Vec<CoachingRule>,
    #[serde(default)]
    pub circuit_breaker: CircuitBreaker,
}

impl Default for Coaching {
    fn default() -> Self {
        Self {
            rolling_window: 5,
            rules: Vec::new(),
            circuit_breaker: CircuitBreaker::default(),
        }
    }
}

/// A dimension below its threshold assigns this coaching pack.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CoachingRule {
    pub dimension: String,
    pub pack: String,
    /// On what the dimension is judged: one call, the rolling average, or either.
    #[serde(default)]
    pub trigger: Trigger,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Trigger {
    /// The dimension failed on the newest call.
    Call,
    /// Its average over the last `rolling_window` calls is below the threshold.
    Rolling,
    #[default]
    Either,
}

/// 能力熔断阀: N consecutive failed competitor-handling calls suspend the rep's independent
/// follow-up and enrol them in a training camp.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CircuitBreaker {
    #[serde(default = "competitor_handling")]
    pub dimension: String,
    #[serde(default = "two")]
    pub consecutive_failures: u32,
    #[serde(default = "seventy_two")]
    pub training_hours: u32,
}

impl Default for CircuitBreaker {
    fn default() -> Self {
        Self {
            dimension: competitor_handling(),
            consecutive_failures: 2,
            training_hours: 72,
        }
    }
}

fn agent() -> Speaker {
    Speaker::Agent
}
fn customer() -> Speaker {
    Speaker::Customer
}
fn customer_only() -> Vec<Speaker> {
    vec![Speaker::Customer]
}
fn one() -> u32 {
    1
}
fn two() -> u32 {
    2
}
fn five() -> u32 {
    5
}
fn seventy_two() -> u32 {
    72
}
fn seven_tenths() -> f32 {
    0.7
}
fn competitor_handling() -> String {
    "competitor_handling".into()
}

impl Playbook {
    /// Words Whisper should expect: every competitor's name and aliases.
    pub fn hotwords(&self) -> Vec<String> {
        self.competitors
            .iter()
            .flat_map(|c| std::iter::once(&c.name).chain(&c.aliases))
            .cloned()
            .collect()
    }
}

/// A key question's phrasing, at most.
pub const MAX_PHRASE_CHARS: usize = 500;
/// A competitor's name or alias, at most.
pub const MAX_NAME_CHARS: usize = 100;
/// A training camp, at most (a year).
pub const MAX_TRAINING_HOURS: u32 = 8_760;
/// A playbook file, at most.
pub const MAX_PLAYBOOK_BYTES: usize = 256 * 1024;

/// A playbook problem, naming the field.
#[derive(Debug, Clone, thiserror::Error)]
#[error("playbook {source_name}: {field}: {message}")]
pub struct PlaybookError {
    pub source_name: String,
    /// The field, e.g. `competitors[2].name`; `(file)` for syntax errors.
    pub field: String,
    pub message: String,
}

impl Playbook {
    /// Parses and validates a playbook. `source_name` is shown in errors (usually the path).
    pub fn parse(text: &str, source_name: &str) -> Result<Self, PlaybookError> {
        if text.len() > MAX_PLAYBOOK_BYTES {
            return Err(PlaybookError {
                source_name: source_name.into(),
                field: "(file)".into(),
                message: format!("larger than {MAX_PLAYBOOK_BYTES} bytes"),
            });
        }
        let mut playbook: Playbook = toml::from_str(text).map_err(|e| {
            // Say where (the field's path and its line) and what, in plain words.
            let field = e.span().map_or("(file)".to_owned(), |span| {
                let at = span.start.min(text.len());
                let line = text[..at].matches('\n').count() + 1;
                match field_at(text, at) {
                    Some(path) => format!("{path} (line {line})"),
                    None => format!("line {line}"),
                }
            });
            PlaybookError {
                source_name: source_name.into(),
                field,
                message: plain_words(e.message().trim()),
            }
        })?;
        playbook.revision = revision(text);
        playbook
            .validate()
            .map_err(|(field, message)| PlaybookError {
                source_name: source_name.into(),
                field,
                message,
            })?;
        Ok(playbook)
    }

    pub fn load(path: &Path) -> Result<Self, PlaybookError> {
        let name = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| PlaybookError {
            source_name: name.clone(),
            field: "(file)".into(),
            message: e.to_string(),
        })?;
        Self::parse(&text, &name)
    }

    /// Value checks; the error names the field.
    fn validate(&self) -> Result<(), (String, String)> {
        let fail = |field: String, message: &str| Err((field, message.to_owned()));
        // Phrases reach the sentence encoder and names prime Whisper (a C string): bounded, and
        // free of control characters.
        let text = |field: String, value: &str, max: usize| -> Result<(), (String, String)> {
            if value.chars().count() > max {
                return fail(field, &format!("longer than {max} characters"));
            }
            if value
                .chars()
                .any(|c| c.is_control() && c != '\n' && c != '\t')
            {
                return fail(field, "contains a control character");
            }
            Ok(())
        };
        if self.name.trim().is_empty() {
            return fail("name".into(), "must not be empty");
        }
        let mut ids = std::collections::HashSet::new();
        for (i, q) in self.key_questions.iter().enumerate() {
            let at = |f: &str| format!("key_questions[{i}].{f}");
            if q.id.trim().is_empty() {
                return fail(at("id"), "must not be empty");
            }
            if !ids.insert(q.id.as_str()) {
                return fail(at("id"), &format!("{:?} is used twice", q.id));
            }
            if q.phrasings.iter().all(|p| p.trim().is_empty()) {
                return fail(at("phrasings"), "needs at least one phrasing");
            }
            for (j, p) in q.phrasings.iter().enumerate() {
                text(at(&format!("phrasings[{j}]")), p, MAX_PHRASE_CHARS)?;
            }
            if q.min_count == 0 {
                return fail(at("min_count"), "must be at least 1");
            }
            if let Some(t) = q.threshold.filter(|t| !(0.0..=1.0).contains(t)) {
                return fail(at("threshold"), &format!("{t} is out of range 0 to 1"));
            }
            if let Some(m) = q.within_minutes.filter(|m| !(*m > 0.0 && m.is_finite())) {
                return fail(
                    at("within_minutes"),
                    &format!("{m} must be a positive number of minutes"),
                );
            }
        }
        for (i, c) in self.competitors.iter().enumerate() {
            let at = |f: &str| format!("competitors[{i}].{f}");
            if c.name.trim().is_empty() {
                return fail(at("name"), "must not be empty");
            }
            text(at("name"), &c.name, MAX_NAME_CHARS)?;
            for (j, a) in c.aliases.iter().enumerate() {
                text(at(&format!("aliases[{j}]")), a, MAX_NAME_CHARS)?;
            }
            if let Some(j) = c.aliases.iter().position(|a| a.trim().is_empty()) {
                return fail(at(&format!("aliases[{j}]")), "must not be empty");
            }
            if c.strategy_pack
                .as_ref()
                .is_some_and(|p| p.title.trim().is_empty())
            {
                return fail(at("strategy_pack.title"), "must not be empty");
            }
        }
        for (field, v) in [
            ("emotion.frustration_alert", self.emotion.frustration_alert),
            ("emotion.perfunctory_alert", self.emotion.perfunctory_alert),
        ] {
            if !(0.0..=1.0).contains(&v) {
                return fail(field.into(), &format!("{v} is out of range 0 to 1"));
            }
        }
        let mut dims = std::collections::HashSet::new();
        for (i, d) in self.dimensions.iter().enumerate() {
            let at = |f: &str| format!("dimensions[{i}].{f}");
            if d.id.trim().is_empty() {
                return fail(at("id"), "must not be empty");
            }
            if !dims.insert(d.id.as_str()) {
                return fail(at("id"), &format!("{:?} is used twice", d.id));
            }
            if !(0.0..=100.0).contains(&d.pass_threshold) {
                return fail(
                    at("pass_threshold"),
                    &format!("{} is out of range 0 to 100", d.pass_threshold),
                );
            }
            if d.signals.is_empty() {
                return fail(at("signals"), "needs at least one signal");
            }
            for (j, s) in d.signals.iter().enumerate() {
                let known = SIGNALS.contains(&s.signal.as_str())
                    || s.signal
                        .strip_prefix("question:")
                        .is_some_and(|id| ids.contains(id));
                if !known {
                    let mut questions: Vec<String> =
                        ids.iter().map(|id| format!("question:{id}")).collect();
                    questions.sort();
                    let questions = if questions.is_empty() {
                        "no key questions are defined".to_owned()
                    } else {
                        questions.join(", ")
                    };
                    return fail(
                        at(&format!("signals[{j}].signal")),
                        &format!(
                            "unknown signal {:?} (known: {}; and the key questions: {questions})",
                            s.signal,
                            SIGNALS.join(", ")
                        ),
                    );
                }
                if !(s.weight > 0.0 && s.weight.is_finite()) {
                    return fail(
                        at(&format!("signals[{j}].weight")),
                        &format!("{} must be positive", s.weight),
                    );
                }
            }
        }
        for (i, r) in self.coaching.rules.iter().enumerate() {
            if !dims.contains(r.dimension.as_str()) {
                return fail(
                    format!("coaching.rules[{i}].dimension"),
                    &format!("no dimension {:?}", r.dimension),
                );
            }
            if r.pack.trim().is_empty() {
                return fail(format!("coaching.rules[{i}].pack"), "must not be empty");
            }
        }
        let cb = &self.coaching.circuit_breaker;
        if !self.dimensions.is_empty() && !dims.contains(cb.dimension.as_str()) {
            return fail(
                "coaching.circuit_breaker.dimension".into(),
                &format!("no dimension {:?}", cb.dimension),
            );
        }
        if cb.training_hours > MAX_TRAINING_HOURS {
            return fail(
                "coaching.circuit_breaker.training_hours".into(),
                &format!(
                    "{} is more than a year ({MAX_TRAINING_HOURS} h)",
                    cb.training_hours
                ),
            );
        }
        if cb.consecutive_failures == 0 {
            return fail(
                "coaching.circuit_breaker.consecutive_failures".into(),
                "must be at least 1",
            );
        }
        if self.coaching.rolling_window == 0 {
            return fail("coaching.rolling_window".into(), "must be at least 1");
        }
        Ok(())
    }
}

/// `sha256:` + the first 16 hex digits of the content's digest.
pub fn revision(text: &str) -> String {
    format!(
        "sha256:{}",
        &hex::encode(Sha256::digest(text.as_bytes()))[..16]
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINIMAL: &str = r#"
name = "demo"
[[competitors]]
name = "销售易"
aliases = ["XSY"]
"#;

    fn error_of(text: &str) -> PlaybookError {
        Playbook::parse(text, "test.toml").expect_err("should be rejected")
    }

    #[test]
    fn a_minimal_playbook_gets_defaults_and_a_revision() {
        let p = Playbook::parse(MINIMAL, "test.toml").unwrap();
        assert_eq!(p.competitors[0].mentioned_by, Speaker::Customer);
        assert_eq!(p.coaching.circuit_breaker.consecutive_failures, 2);
        assert_eq!(p.coaching.circuit_breaker.training_hours, 72);
        assert!(p.revision.starts_with("sha256:") && p.revision.len() == 23);
        let changed = Playbook::parse(&MINIMAL.replace("XSY", "XiaoShouYi"), "t").unwrap();
        assert_ne!(p.revision, changed.revision);
    }

    #[test]
    fn bad_playbooks_are_rejected_naming_the_field() {
        let e = error_of("name = \"x\"\nnmae = \"typo\"\n");
        assert!(e.message.contains("unknown field `nmae`"), "{e}");
        assert_eq!(e.field, "nmae (line 2)");
        let e = error_of("name = \"x\"\n[[competitors]]\nname = \"\"\n");
        assert_eq!(e.field, "competitors[0].name");
        let e = error_of(
            "name = \"x\"\n[[key_questions]]\nid = \"budget\"\nphrasings = [\"预算多少？\"]\nthreshold = 1.5\n",
        );
        assert_eq!(e.field, "key_questions[0].threshold");
        assert!(e.message.contains("out of range"), "{e}");
        let e =
            error_of("name = \"x\"\n[[key_questions]]\nid = \"budget\"\nphrasings = \"预算\"\n");
        assert_eq!(e.field, "key_questions[0].phrasings (line 4)");
        assert_eq!(e.message, "expected a list [ … ], found the text \"预算\"");
        let e = error_of(
            "name = \"x\"\n[[dimensions]]\nid = \"a\"\nname = \"A\"\npass_threshold = 60\nsignals = []\n[[dimensions]]\nid = \"d\"\nname = \"D\"\npass_threshold = \"60\"\n",
        );
        assert_eq!(e.field, "dimensions[1].pass_threshold (line 10)");
        assert_eq!(e.message, "expected a number, found the text \"60\"");
        let e = error_of("name = \"x\"\n[emotion]\nfrustration_alert = 7\n");
        assert_eq!(e.field, "emotion.frustration_alert");
        let e = error_of(
            "name = \"x\"\n[[dimensions]]\nid = \"d\"\nname = \"D\"\npass_threshold = 60\nsignals = [{ signal = \"vibes\", weight = 1 }]\n",
        );
        assert_eq!(e.field, "dimensions[0].signals[0].signal");
        assert!(
            e.to_string()
                .starts_with("playbook test.toml: dimensions[0].signals[0].signal: unknown signal")
        );
        let e = error_of(
            "name = \"x\"\n[[key_questions]]\nid = \"budget\"\nphrasings = [\"预算？\"]\n[[dimensions]]\nid = \"d\"\nname = \"D\"\npass_threshold = 60\nsignals = [{ signal = \"question:pains\", weight = 1 }]\n",
        );
        assert!(e.message.contains("question:budget"), "{e}");
    }

    /// Issue 22: values that would break the engines later are refused now.
    #[test]
    fn values_that_break_the_engines_are_refused() {
        // A NUL in a competitor primes Whisper with a C string it cannot take.
        let e = error_of("name = \"x\"\n[[competitors]]\nname = \"销\\u0000售易\"\n");
        assert_eq!(e.field, "competitors[0].name");
        let e = error_of(&format!(
            "name = \"x\"\n[[key_questions]]\nid = \"q\"\nphrasings = [\"{}\"]\n",
            "价".repeat(MAX_PHRASE_CHARS + 1)
        ));
        assert_eq!(e.field, "key_questions[0].phrasings[0]");
        // A training camp of 3e9 hours would overflow the suspension's end time.
        let e = error_of("name = \"x\"\n[coaching.circuit_breaker]\ntraining_hours = 3000000000\n");
        assert_eq!(e.field, "coaching.circuit_breaker.training_hours");
    }
}
