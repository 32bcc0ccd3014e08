//! Coaching: turning a rep's scored calls into action. A weak dimension assigns its coaching
//! pack; repeated failures at handling competitors trip the circuit breaker (能力熔断阀), which
//! suspends the rep's independent follow-up of new opportunities for a training camp.
//!
//! The decisions here are pure functions of the rep's history that return a `Plan`: what to
//! assign, whether to suspend, and the words that explain it. The store asks for the plan inside
//! the transaction that records a call and persists it there, so that state and events never
//! disagree.

use crate::analysis::playbook::{Playbook, Trigger};
use chrono::{DateTime, Duration, Utc};
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};

/// What coaching knows of a rep when one of their calls has just been recorded.
#[derive(Debug, Clone, Default)]
pub struct RepState {
    /// The rep's calls in call order, the new one included.
    pub history: Vec<CallOutcome>,
    /// Dimensions with an open assignment.
    pub open_assignments: BTreeSet<String>,
    /// Whether a suspension is active now.
    pub suspended: bool,
    /// The last call of the rep's previous suspension, if any: failures before it were paid for.
    pub last_suspension_call: Option<String>,
}

/// What to do after a call: packs to assign, and a suspension if the circuit breaker trips.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Plan {
    pub assignments: Vec<NewAssignment>,
    pub suspension: Option<NewSuspension>,
}

/// The circuit breaker's decision: suspend the rep's independent follow-up until `ends_at`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NewSuspension {
    pub reason: String,
    /// The failed calls that tripped it.
    pub calls: Vec<String>,
    pub ends_at: DateTime<Utc>,
}

/// Decides coaching for a rep after a call recorded at `now`.
pub fn plan(playbook: &Playbook, rep: &RepState, now: DateTime<Utc>) -> Plan {
    let assignments = due_assignments(playbook, &rep.history, &rep.open_assignments);
    let suspension = if rep.suspended {
        None
    } else {
        breaker_trips(playbook, &rep.history, rep.last_suspension_call.as_deref()).map(|calls| {
            let cb = &playbook.coaching.circuit_breaker;
            NewSuspension {
                reason: format!(
                    "{} failed in {} consecutive calls with a competitor: independent follow-up of new opportunities suspended; training camp of {} h",
                    cb.dimension,
                    calls.len(),
                    cb.training_hours
                ),
                calls,
                ends_at: now + Duration::hours(i64::from(cb.training_hours)),
            }
        })
    };
    Plan {
        assignments,
        suspension,
    }
}

/// One of a rep's analysed calls, as coaching sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct CallOutcome {
    pub call_id: String,
    /// Dimension id → (score 0–100, passed); None where the dimension was not judged.
    pub dimensions: BTreeMap<String, (Option<f64>, Option<bool>)>,
    /// The customer raised a competitor in this call.
    pub competitor_raised: bool,
}

impl CallOutcome {
    fn passed(&self, dimension: &str) -> Option<bool> {
        self.dimensions.get(dimension).and_then(|d| d.1)
    }
    fn score(&self, dimension: &str) -> Option<f64> {
        self.dimensions.get(dimension).and_then(|d| d.0)
    }
}

/// A coaching pack to assign, and why.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NewAssignment {
    pub dimension: String,
    pub pack: String,
    pub reason: String,
    pub evidence_calls: Vec<String>,
}

/// The packs due after the newest call of `history` (the rep's calls in call order). A dimension
/// with an open assignment gets no second one.
pub fn due_assignments(
    playbook: &Playbook,
    history: &[CallOutcome],
    open: &BTreeSet<String>,
) -> Vec<NewAssignment> {
    let Some(newest) = history.last() else {
        return Vec::new();
    };
    let window = playbook.coaching.rolling_window.max(1) as usize;
    let mut out = Vec::new();
    for rule in &playbook.coaching.rules {
        if open.contains(&rule.dimension) {
            continue;
        }
        let Some(dim) = playbook.dimensions.iter().find(|d| d.id == rule.dimension) else {
            continue;
        };
        let threshold = f64::from(dim.pass_threshold);
        let single = matches!(rule.trigger, Trigger::Call | Trigger::Either)
            && newest.passed(&dim.id) == Some(false);
        // The rolling average needs a full window of calls that judged the dimension.
        let recent: Vec<&CallOutcome> = history
            .iter()
            .rev()
            .filter(|c| c.score(&dim.id).is_some())
            .take(window)
            .collect();
        let average = (recent.len() == window)
            .then(|| recent.iter().filter_map(|c| c.score(&dim.id)).sum::<f64>() / window as f64);
        let rolling = matches!(rule.trigger, Trigger::Rolling | Trigger::Either)
            && average.is_some_and(|a| a < threshold);
        let (reason, evidence_calls) = if single {
            (
                format!(
                    "{} scored {:.0} on call {} (pass: {threshold:.0})",
                    dim.name,
                    newest.score(&dim.id).unwrap_or(0.0),
                    newest.call_id
                ),
                vec![newest.call_id.clone()],
            )
        } else if rolling {
            (
                format!(
                    "{} averaged {:.0} over the last {window} calls (pass: {threshold:.0})",
                    dim.name,
                    average.unwrap_or(0.0)
                ),
                recent.iter().rev().map(|c| c.call_id.clone()).collect(),
            )
        } else {
            continue;
        };
        out.push(NewAssignment {
            dimension: dim.id.clone(),
            pack: rule.pack.clone(),
            reason,
            evidence_calls,
        });
    }
    out
}

/// The calls that trip the circuit breaker, if it trips: the last N calls in which the customer
/// raised a competitor, all failed on the breaker's dimension. Only calls after `after` (the last
/// call of the previous suspension) count, so that one run of failures suspends once.
pub fn breaker_trips(
    playbook: &Playbook,
    history: &[CallOutcome],
    after: Option<&str>,
) -> Option<Vec<String>> {
    let cb = &playbook.coaching.circuit_breaker;
    let n = cb.consecutive_failures.max(1) as usize;
    let start = after
        .and_then(|id| history.iter().position(|c| c.call_id == id))
        .map_or(0, |i| i + 1);
    let raised: Vec<&CallOutcome> = history[start..]
        .iter()
        .filter(|c| c.competitor_raised)
        .collect();
    let last = raised.get(raised.len().checked_sub(n)?..)?;
    last.iter()
        .all(|c| c.passed(&cb.dimension) == Some(false))
        .then(|| last.iter().map(|c| c.call_id.clone()).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn playbook(trigger: &str) -> Playbook {
        Playbook::parse(
            &format!(
                r#"
name = "t"
[[dimensions]]
id = "competitor_handling"
name = "竞品应对"
signals = [{{ signal = "competitor_response", weight = 1.0 }}]
pass_threshold = 60
[[dimensions]]
id = "needs_discovery"
name = "需求挖掘"
signals = [{{ signal = "key_question_coverage", weight = 1.0 }}]
pass_threshold = 60
[coaching]
rolling_window = 3
[[coaching.rules]]
dimension = "needs_discovery"
pack = "SPIN 提问法实战训练包"
trigger = "{trigger}"
"#
            ),
            "t",
        )
        .unwrap()
    }

    fn call(id: &str, competitor: Option<bool>, needs: f64) -> CallOutcome {
        let mut dimensions = BTreeMap::new();
        dimensions.insert(
            "competitor_handling".into(),
            match competitor {
                Some(pass) => (Some(if pass { 100.0 } else { 0.0 }), Some(pass)),
                None => (None, None),
            },
        );
        dimensions.insert("needs_discovery".into(), (Some(needs), Some(needs >= 60.0)));
        CallOutcome {
            call_id: id.into(),
            dimensions,
            competitor_raised: competitor.is_some(),
        }
    }

    #[test]
    fn the_breaker_trips_on_exactly_the_second_consecutive_failure() {
        let p = playbook("call");
        let fail = |id| call(id, Some(false), 80.0);
        let pass = |id| call(id, Some(true), 80.0);
        let none = |id| call(id, None, 80.0);
        assert_eq!(breaker_trips(&p, &[fail("a")], None), None);
        assert_eq!(
            breaker_trips(&p, &[fail("a"), fail("b")], None),
            Some(vec!["a".into(), "b".into()])
        );
        // A failure followed by a pass, then a failure: not consecutive.
        assert_eq!(
            breaker_trips(&p, &[fail("a"), pass("b"), fail("c")], None),
            None
        );
        // Calls without a competitor neither count nor break the run.
        assert_eq!(breaker_trips(&p, &[fail("a"), none("b")], None), None);
        assert_eq!(
            breaker_trips(&p, &[fail("a"), none("b"), fail("c")], None),
            Some(vec!["a".into(), "c".into()])
        );
        // After a suspension that ended at c, the run starts again.
        let h = [fail("a"), fail("c"), fail("d")];
        assert_eq!(breaker_trips(&p, &h, Some("c")), None);
        let h = [fail("a"), fail("c"), fail("d"), fail("e")];
        assert_eq!(
            breaker_trips(&p, &h, Some("c")),
            Some(vec!["d".into(), "e".into()])
        );
    }

    #[test]
    fn packs_are_assigned_on_a_call_or_on_the_rolling_average_once() {
        let h = [call("a", None, 50.0)];
        let due = due_assignments(&playbook("call"), &h, &BTreeSet::new());
        assert_eq!(due.len(), 1);
        assert_eq!(due[0].pack, "SPIN 提问法实战训练包");
        assert_eq!(due[0].evidence_calls, vec!["a".to_owned()]);
        // Open already: no duplicate.
        let open = BTreeSet::from(["needs_discovery".to_owned()]);
        assert!(due_assignments(&playbook("call"), &h, &open).is_empty());
        // Rolling: one bad call is not enough, three that average below 60 are.
        assert!(due_assignments(&playbook("rolling"), &h, &BTreeSet::new()).is_empty());
        let h = [
            call("a", None, 50.0),
            call("b", None, 70.0),
            call("c", None, 40.0),
        ];
        let due = due_assignments(&playbook("rolling"), &h, &BTreeSet::new());
        assert_eq!(due.len(), 1, "{due:?}");
        assert_eq!(due[0].evidence_calls, vec!["a", "b", "c"]);
        // A passing newest call with a good average assigns nothing.
        let h = [
            call("a", None, 90.0),
            call("b", None, 70.0),
            call("c", None, 65.0),
        ];
        assert!(due_assignments(&playbook("either"), &h, &BTreeSet::new()).is_empty());
    }
}
