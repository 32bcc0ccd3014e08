//! Between the crate's types and callqa.v1 messages. Field for field: the JSON of `callqa
//! analyze` and these messages are one schema (tests/analysis.rs checks the JSON side).

use crate::analysis::{self, Analysis};
use crate::asr::Language;
use crate::audio::channels::Role;
use crate::proto;
use crate::service::live::LiveEvent;
use crate::store::{self, Event, RepProfile};
use crate::transcript::{Direction, Turn};

pub fn language(l: Language) -> i32 {
    (match l {
        Language::Auto => proto::Language::Auto,
        Language::Zh => proto::Language::Zh,
        Language::En => proto::Language::En,
    }) as i32
}

/// An unknown value is `Auto`: the language is then detected.
pub fn language_from(l: i32) -> Language {
    match proto::Language::try_from(l).unwrap_or(proto::Language::Auto) {
        proto::Language::Auto => Language::Auto,
        proto::Language::Zh => Language::Zh,
        proto::Language::En => Language::En,
    }
}

pub fn direction_from(d: i32) -> Direction {
    match proto::Direction::try_from(d).unwrap_or(proto::Direction::Unspecified) {
        proto::Direction::Unspecified => Direction::Unknown,
        proto::Direction::Inbound => Direction::Inbound,
        proto::Direction::Outbound => Direction::Outbound,
    }
}

/// The most speakers a mono recording is split into: 0 asks for the default (2).
pub fn max_speakers_from(n: u32) -> usize {
    match n {
        0 => 2,
        n => (n as usize).min(crate::speakers::diarize::MAX_SPEAKERS),
    }
}

pub fn role(r: Role) -> i32 {
    (match r {
        Role::Agent => proto::Role::Agent,
        Role::Customer => proto::Role::Customer,
        Role::Unknown => proto::Role::Unknown,
    }) as i32
}

pub fn role_from(r: i32) -> Role {
    match proto::Role::try_from(r).unwrap_or(proto::Role::Unknown) {
        proto::Role::Agent => Role::Agent,
        proto::Role::Customer => Role::Customer,
        proto::Role::Unknown => Role::Unknown,
    }
}

/// A serde enum's name as it is in the JSON ("comparison", "semantic", …).
fn name<T: serde::Serialize>(v: T) -> String {
    serde_json::to_value(v)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}

pub fn turn(t: Turn) -> proto::Turn {
    proto::Turn {
        role: role(t.role),
        role_source: name(t.role_source),
        role_confidence: t.role_confidence,
        speaker: t.speaker,
        channel: t.channel.map(|c| c as u32),
        start_ms: t.start_ms,
        end_ms: t.end_ms,
        text: t.text,
        words: t
            .words
            .into_iter()
            .map(|w| proto::Word {
                text: w.text,
                start_ms: w.start_ms,
                end_ms: w.end_ms,
                probability: w.probability,
            })
            .collect(),
        avg_logprob: t.avg_logprob,
        prosody: t.prosody.map(|p| proto::Prosody {
            energy_db: p.energy_db,
            energy_sd_db: p.energy_sd_db,
            pitch_hz: p.pitch_hz,
            pitch_sd_semitones: p.pitch_sd_semitones,
            voiced_ratio: p.voiced_ratio,
        }),
    }
}

fn role_metrics(m: analysis::talk::RoleMetrics) -> proto::RoleMetrics {
    proto::RoleMetrics {
        turns: m.turns as u32,
        talk_ms: m.talk_ms,
        talk_ratio: m.talk_ratio,
        longest_monologue_ms: m.longest_monologue_ms,
        speech_rate: m.speech_rate,
        speech_rate_unit: m.speech_rate_unit,
        questions: m.questions as u32,
        interruptions: m.interruptions as u32,
    }
}

fn scores(s: analysis::emotion::EmotionScores) -> proto::EmotionScores {
    proto::EmotionScores {
        frustration: s.frustration,
        perfunctory: s.perfunctory,
        positive: s.positive,
        neutral: s.neutral,
    }
}

fn moment(m: analysis::emotion::Moment) -> proto::Moment {
    proto::Moment {
        turn: m.turn as u32,
        time_ms: m.time_ms,
        score: m.score,
        text: m.text,
    }
}

fn item(i: analysis::summary::Item) -> proto::SummaryItem {
    proto::SummaryItem {
        turn: i.turn as u32,
        role: role(i.role),
        time_ms: i.time_ms,
        text: i.text,
        score: i.score,
    }
}

pub fn competitor_mention(m: analysis::competitors::Mention) -> proto::CompetitorMention {
    proto::CompetitorMention {
        competitor: m.competitor,
        alias: m.alias,
        heard: m.heard,
        how: name(m.how),
        role: role(m.role),
        turn: m.turn as u32,
        time_ms: m.time_ms,
        sentence: m.sentence,
        strategy_pack: m.strategy_pack.map(|p| proto::StrategyPack {
            title: p.title,
            content: p.content,
            link: p.link,
        }),
        agent_response: name(m.agent_response),
        response_turn: m.response_turn.map(|t| t as u32),
    }
}

pub fn emotion_alert(a: analysis::emotion::EmotionAlert) -> proto::EmotionAlert {
    proto::EmotionAlert {
        turn: a.turn as u32,
        role: role(a.role),
        time_ms: a.time_ms,
        kind: a.kind,
        score: a.score,
        text: a.text,
    }
}

/// A live event as the stream sends it.
pub fn live_event(e: LiveEvent) -> proto::stream_call_response::Event {
    use proto::stream_call_response::Event;
    match e {
        LiveEvent::Turn {
            id,
            turn: t,
            is_final,
        } => Event::Turn(proto::TurnEvent {
            turn_id: id,
            is_final,
            turn: Some(turn(t)),
        }),
        LiveEvent::Competitor(m) => Event::CompetitorMention(competitor_mention(m)),
        LiveEvent::Emotion(a) => Event::EmotionAlert(emotion_alert(a)),
        LiveEvent::KeyQuestionMissing {
            id,
            description,
            deadline_ms,
        } => Event::KeyQuestionMissing(proto::KeyQuestionMissing {
            id,
            description,
            deadline_ms,
        }),
    }
}

pub fn analysis(a: Analysis) -> proto::Analysis {
    let talk = a.talk;
    proto::Analysis {
        call_id: a.call_id,
        rep_id: a.rep_id,
        customer_id: a.customer_id,
        call_date: a.call_date.to_string(),
        language: a.language,
        duration_ms: a.duration_ms,
        playbook: a.playbook,
        playbook_revision: a.playbook_revision,
        note: a.note,
        turns: a.turns.into_iter().map(turn).collect(),
        talk: Some(proto::TalkMetrics {
            agent: Some(role_metrics(talk.agent)),
            customer: Some(role_metrics(talk.customer)),
            unknown: Some(role_metrics(talk.unknown)),
            call_ms: talk.call_ms,
            dead_air_ms: talk.dead_air_ms,
            longest_silence_ms: talk.longest_silence_ms,
            overtalk_ms: talk.overtalk_ms,
            agent_response_latency_ms: talk.agent_response_latency_ms,
            agent_response_latency_max_ms: talk.agent_response_latency_max_ms,
        }),
        key_questions: Some(proto::Coverage {
            percent: a.key_questions.percent,
            questions: a
                .key_questions
                .questions
                .into_iter()
                .map(|q| proto::QuestionResult {
                    id: q.id,
                    asked: q.asked,
                    count: q.count as u32,
                    satisfied: q.satisfied,
                    matches: q
                        .matches
                        .into_iter()
                        .map(|m| proto::QuestionMatch {
                            turn: m.turn as u32,
                            role: role(m.role),
                            time_ms: m.time_ms,
                            sentence: m.sentence,
                            score: m.score,
                            how: name(m.how),
                            counts: m.counts,
                        })
                        .collect(),
                })
                .collect(),
        }),
        competitor_mentions: a
            .competitor_mentions
            .into_iter()
            .map(competitor_mention)
            .collect(),
        emotion: Some(proto::EmotionReport {
            turns: a
                .emotion
                .turns
                .into_iter()
                .map(|t| proto::TurnEmotion {
                    turn: t.turn as u32,
                    role: role(t.role),
                    time_ms: t.time_ms,
                    scores: Some(scores(t.scores)),
                    text_scores: Some(scores(t.text_scores)),
                    cues: t.cues.into_iter().map(name).collect(),
                })
                .collect(),
            roles: a
                .emotion
                .roles
                .into_iter()
                .map(|r| proto::RoleEmotion {
                    role: role(r.role),
                    mean: Some(scores(r.mean)),
                    peak_frustration: r.peak_frustration.map(moment),
                    peak_perfunctory: r.peak_perfunctory.map(moment),
                })
                .collect(),
            alerts: a.emotion.alerts.into_iter().map(emotion_alert).collect(),
        }),
        summary: Some(proto::Summary {
            core_needs: a.summary.core_needs.into_iter().map(item).collect(),
            objections: a
                .summary
                .objections
                .into_iter()
                .map(|o| {
                    let i = item(o.item);
                    proto::Objection {
                        turn: i.turn,
                        role: i.role,
                        time_ms: i.time_ms,
                        text: i.text,
                        score: i.score,
                        response_turn: o.response_turn.map(|t| t as u32),
                        kind: o.kind,
                    }
                })
                .collect(),
            commitments: a
                .summary
                .commitments
                .into_iter()
                .map(|c| {
                    let i = item(c.item);
                    proto::Commitment {
                        turn: i.turn,
                        role: i.role,
                        time_ms: i.time_ms,
                        text: i.text,
                        score: i.score,
                        due: c.due.map(|d| d.to_string()),
                        due_phrase: c.due_phrase,
                    }
                })
                .collect(),
        }),
        scorecard: Some(proto::Scorecard {
            dimensions: a
                .scorecard
                .dimensions
                .into_iter()
                .map(|d| proto::DimensionScore {
                    id: d.id,
                    name: d.name,
                    score: d.score,
                    pass_threshold: d.pass_threshold,
                    passed: d.passed,
                    signals: d
                        .signals
                        .into_iter()
                        .map(|s| proto::SignalScore {
                            signal: s.signal,
                            weight: s.weight,
                            value: s.value,
                            detail: s.detail,
                            evidence: s
                                .evidence
                                .into_iter()
                                .map(|e| proto::Evidence {
                                    turn: e.turn as u32,
                                    time_ms: e.time_ms,
                                    text: e.text,
                                })
                                .collect(),
                        })
                        .collect(),
                })
                .collect(),
        }),
        content_hash: a.content_hash,
        overall: Some(proto::Overall {
            score: a.overall.score,
            passed: a.overall.passed,
            not_judged: a.overall.not_judged,
        }),
        timings: Some(proto::Timings {
            transcription_ms: a.timings.transcription_ms,
            analysis_ms: a.timings.analysis_ms,
            real_time_factor: a.timings.real_time_factor,
        }),
        redactions: a
            .redactions
            .into_iter()
            .map(|r| proto::RedactedSpan {
                class: crate::redact::label(r.class).to_lowercase(),
                turn: r.turn as u32,
                start_ms: r.start_ms,
                end_ms: r.end_ms,
            })
            .collect(),
    }
}

/// Back from the message to the crate's Analysis, through the JSON both share; roles, numbers
/// in the message, become their names again.
pub fn analysis_from(a: proto::Analysis) -> Result<Analysis, serde_json::Error> {
    fn role_names(v: &mut serde_json::Value) {
        match v {
            serde_json::Value::Object(fields) => {
                for (key, value) in fields.iter_mut() {
                    match (key.as_str(), value.as_i64()) {
                        ("role", Some(r)) => {
                            *value = serde_json::to_value(role_from(r as i32))
                                .unwrap_or(serde_json::Value::Null);
                        }
                        _ => role_names(value),
                    }
                }
            }
            serde_json::Value::Array(items) => items.iter_mut().for_each(role_names),
            _ => {}
        }
    }
    let mut json = serde_json::to_value(a)?;
    role_names(&mut json);
    serde_json::from_value(json)
}

fn json_to_value(v: serde_json::Value) -> prost_types::Value {
    use prost_types::value::Kind;
    let kind = match v {
        serde_json::Value::Null => Kind::NullValue(0),
        serde_json::Value::Bool(b) => Kind::BoolValue(b),
        serde_json::Value::Number(n) => Kind::NumberValue(n.as_f64().unwrap_or_default()),
        serde_json::Value::String(s) => Kind::StringValue(s),
        serde_json::Value::Array(a) => Kind::ListValue(prost_types::ListValue {
            values: a.into_iter().map(json_to_value).collect(),
        }),
        serde_json::Value::Object(o) => Kind::StructValue(json_to_struct(o)),
    };
    prost_types::Value { kind: Some(kind) }
}

fn json_to_struct(o: serde_json::Map<String, serde_json::Value>) -> prost_types::Struct {
    prost_types::Struct {
        fields: o.into_iter().map(|(k, v)| (k, json_to_value(v))).collect(),
    }
}

pub fn event(e: Event) -> proto::Event {
    proto::Event {
        seq: e.seq,
        id: e.id,
        kind: e.kind.as_str().to_owned(),
        created_at: e.created_at.to_rfc3339(),
        payload: Some(match e.payload {
            serde_json::Value::Object(o) => json_to_struct(o),
            other => json_to_struct(serde_json::Map::from_iter([("value".to_owned(), other)])),
        }),
    }
}

fn assignment(a: store::Assignment) -> proto::Assignment {
    proto::Assignment {
        id: a.id,
        rep_id: a.rep_id,
        dimension: a.dimension,
        pack: a.pack,
        reason: a.reason,
        evidence_calls: a.evidence_calls,
        status: a.status,
        created_at: a.created_at.to_rfc3339(),
    }
}

pub fn rep_profile(p: RepProfile) -> proto::RepProfile {
    proto::RepProfile {
        rep_id: p.rep_id,
        calls: p.calls as u32,
        playbook: p.playbook,
        revisions: p.revisions,
        other_playbooks: p.other_playbooks,
        dimensions: p
            .dimensions
            .into_iter()
            .map(|d| proto::DimensionHistory {
                id: d.id,
                name: d.name,
                average: d.average,
                trend: d
                    .trend
                    .into_iter()
                    .map(|t| proto::TrendPoint {
                        call_id: t.call_id,
                        call_date: t.call_date.to_string(),
                        score: t.score,
                        passed: t.passed,
                    })
                    .collect(),
            })
            .collect(),
        open_assignments: p.open_assignments.into_iter().map(assignment).collect(),
        suspension: p.suspension.map(|s| proto::Suspension {
            id: s.id,
            rep_id: s.rep_id,
            reason: s.reason,
            calls: s.calls,
            started_at: s.started_at.to_rfc3339(),
            ends_at: s.ends_at.to_rfc3339(),
            status: s.status,
        }),
    }
}
