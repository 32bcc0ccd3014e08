//! The store and the coaching engine on real analyses: the circuit breaker, expiry, idempotent
//! re-analysis, assignments, tenant isolation, and a SIGKILL in the middle of a batch.

mod common;

use callqa::analysis::playbook::Playbook;
use callqa::analysis::{Analysis, CallInfo, analyse};
use callqa::store::{EventKind, SqliteStore, Store, StoreError};
use callqa::transcript::Turn;
use chrono::{DateTime, Duration, NaiveDate, Utc};

fn playbook() -> Playbook {
    Playbook::load(std::path::Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/examples/playbook.toml"
    )))
    .unwrap()
}

/// The customer's opening and the agent's reply, as a two-turn call.
fn transcript(customer: &str, agent: &str) -> Vec<Turn> {
    let turn = |role: &str, start: u64, text: &str| -> Turn {
        serde_json::from_value(serde_json::json!({"role": role, "start_ms": start, "end_ms": start + 4_000, "text": text})).unwrap()
    };
    vec![
        turn(
            "agent",
            0,
            "您好，这里是星云软件，我是小王。请问您现在用什么系统管理客户？",
        ),
        turn("customer", 4_500, customer),
        turn("agent", 9_000, agent),
    ]
}

/// A competitor raised and left unanswered, answered with a comparison, or none raised.
enum Kind {
    Fails,
    Passes,
    NoCompetitor,
}

struct Analyser {
    embedder: callqa::text::embed::Embedder,
    head: callqa::analysis::emotion::EmotionHead,
    playbook: Playbook,
}

impl Analyser {
    fn new() -> Self {
        let dir = common::model_dir();
        Self {
            embedder: callqa::service::engines::embedder(&dir).unwrap(),
            head: callqa::service::engines::emotion_head(&dir).unwrap(),
            playbook: playbook(),
        }
    }

    fn call(&mut self, call_id: &str, rep: &str, day: u32, kind: Kind) -> Analysis {
        let turns = match kind {
            Kind::Fails => transcript("我们现在用的是销售易，挺好用的。", "好的，那我们再联系。"),
            Kind::Passes => transcript(
                "我们现在用的是销售易，挺好用的。",
                "和销售易相比，我们两周就能上线，价格也更低。",
            ),
            Kind::NoCompetitor => transcript("我们现在用表格。", "好的，那我们再联系。"),
        };
        let info = CallInfo {
            call_id: call_id.into(),
            rep_id: Some(rep.into()),
            call_date: NaiveDate::from_ymd_opt(2026, 11, day).unwrap(),
            duration_ms: 13_000,
            ..CallInfo::default()
        };
        analyse(
            &self.playbook,
            info,
            turns,
            &mut self.embedder,
            &mut self.head,
        )
        .unwrap()
    }
}

fn at(hour: i64) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-11-20T08:00:00Z")
        .unwrap()
        .with_timezone(&Utc)
        + Duration::hours(hour)
}

fn kinds(store: &SqliteStore, tenant: &str) -> Vec<String> {
    store
        .events_after(tenant, 0, 1_000)
        .unwrap()
        .into_iter()
        .map(|e| e.kind.to_string())
        .collect()
}

#[test]
fn the_circuit_breaker_fires_on_the_second_consecutive_failure_and_expiry_reinstates() {
    let mut a = Analyser::new();
    let p = a.playbook.clone();
    let store = SqliteStore::in_memory().unwrap();
    let record = |an: &Analysis, hour| store.record("t1", an, &p, at(hour)).unwrap();

    // A failure, then a pass: no suspension.
    let c1 = a.call("c1", "rep-1", 1, Kind::Fails);
    let comp = c1
        .scorecard
        .dimensions
        .iter()
        .find(|d| d.id == "competitor_handling")
        .unwrap();
    assert_eq!(comp.passed, Some(false), "{comp:?}");
    assert!(record(&c1, 0).suspension.is_none());
    assert!(
        record(&a.call("c2", "rep-1", 2, Kind::Passes), 1)
            .suspension
            .is_none()
    );
    // A failure, then a call without a competitor: still none.
    assert!(
        record(&a.call("c3", "rep-1", 3, Kind::Fails), 2)
            .suspension
            .is_none()
    );
    assert!(
        record(&a.call("c4", "rep-1", 4, Kind::NoCompetitor), 3)
            .suspension
            .is_none()
    );
    // The second consecutive failure with a competitor: suspended, for 72 hours.
    let r = record(&a.call("c5", "rep-1", 5, Kind::Fails), 4);
    let s = r.suspension.expect("suspended on c5");
    assert_eq!(s.calls, vec!["c3", "c5"]);
    assert_eq!(s.ends_at, at(4 + 72));
    let event = r
        .events
        .iter()
        .find(|e| e.kind == EventKind::RepSuspended)
        .unwrap();
    assert_eq!(event.payload["rep_id"], "rep-1");
    assert_eq!(event.payload["calls"], serde_json::json!(["c3", "c5"]));
    assert!(
        event.payload["reason"]
            .as_str()
            .unwrap()
            .contains("competitor_handling")
    );
    // Suspended reps are not suspended again by the next failure.
    assert!(
        record(&a.call("c6", "rep-1", 6, Kind::Fails), 5)
            .suspension
            .is_none()
    );
    assert!(
        store
            .rep_profile("t1", "rep-1", None)
            .unwrap()
            .suspension
            .is_some()
    );

    // Expiry: not before its time, then exactly once.
    assert!(store.expire_suspensions(at(75)).unwrap().is_empty());
    let reinstated = store.expire_suspensions(at(77)).unwrap();
    assert_eq!(reinstated.len(), 1);
    assert_eq!(reinstated[0].kind, EventKind::RepReinstated);
    assert_eq!(reinstated[0].payload["how"], "expired");
    assert!(store.expire_suspensions(at(78)).unwrap().is_empty());
    assert!(
        store
            .rep_profile("t1", "rep-1", None)
            .unwrap()
            .suspension
            .is_none()
    );

    // After reinstatement the run starts afresh: c6 alone does not suspend; c7 with it does.
    let r = record(&a.call("c7", "rep-1", 7, Kind::Fails), 80);
    assert_eq!(r.suspension.unwrap().calls, vec!["c6", "c7"]);
    // Completing the training camp ends it early.
    let done = store
        .complete_training("t1", "rep-1", at(81))
        .unwrap()
        .unwrap();
    assert_eq!(done.payload["how"], "completed");
    assert!(
        store
            .complete_training("t1", "rep-1", at(82))
            .unwrap()
            .is_none()
    );
}

#[test]
fn re_analysis_replaces_and_assignments_are_not_duplicated() {
    let mut a = Analyser::new();
    let p = a.playbook.clone();
    let store = SqliteStore::in_memory().unwrap();
    let first = store
        .record(
            "t1",
            &a.call("c1", "rep-2", 1, Kind::NoCompetitor),
            &p,
            at(0),
        )
        .unwrap();
    assert!(first.new_call);
    // The call misses most key questions: needs discovery and risk anticipation are weak.
    let packs: Vec<&str> = first.assignments.iter().map(|x| x.pack.as_str()).collect();
    assert!(packs.contains(&"SPIN 提问法实战训练包"), "{packs:?}");
    assert_eq!(first.assignments[0].evidence_calls, vec!["c1"]);

    // The same call again, and another weak call: no new assignment while one is open.
    let again = store
        .record(
            "t1",
            &a.call("c1", "rep-2", 1, Kind::NoCompetitor),
            &p,
            at(1),
        )
        .unwrap();
    assert!(!again.new_call);
    assert!(again.assignments.is_empty());
    let next = store
        .record(
            "t1",
            &a.call("c2", "rep-2", 2, Kind::NoCompetitor),
            &p,
            at(2),
        )
        .unwrap();
    assert!(next.assignments.is_empty());

    let profile = store.rep_profile("t1", "rep-2", None).unwrap();
    assert_eq!(profile.calls, 2, "re-analysis does not count twice");
    let needs = profile
        .dimensions
        .iter()
        .find(|d| d.id == "needs_discovery")
        .unwrap();
    assert_eq!(needs.trend.len(), 2);
    assert_eq!(
        profile.open_assignments.len(),
        first.assignments.len(),
        "{:?}",
        profile.open_assignments
    );
    assert_eq!(profile.dimensions.len(), 6);
    // Each record wrote an analysis.completed event, in order, with stable ids.
    let events = store.events_after("t1", 0, 100).unwrap();
    let completed: Vec<_> = events
        .iter()
        .filter(|e| e.kind == EventKind::AnalysisCompleted)
        .collect();
    assert_eq!(completed.len(), 3);
    assert!(
        events
            .windows(2)
            .all(|w| w[0].seq < w[1].seq && w[0].id != w[1].id)
    );
    assert_eq!(
        store.events_after("t1", events[1].seq, 100).unwrap(),
        events[2..].to_vec(),
        "resuming from a cursor gives the rest, no gap, no duplicate"
    );
}

#[test]
fn tenants_never_see_each_others_data() {
    let mut a = Analyser::new();
    let p = a.playbook.clone();
    let store = SqliteStore::in_memory().unwrap();
    store
        .record("acme", &a.call("c1", "rep-1", 1, Kind::Fails), &p, at(0))
        .unwrap();
    store
        .record("acme", &a.call("c2", "rep-1", 2, Kind::Fails), &p, at(1))
        .unwrap();
    // Another tenant with the same call and rep ids.
    store
        .record("globex", &a.call("c1", "rep-1", 1, Kind::Passes), &p, at(2))
        .unwrap();

    let acme = store.rep_profile("acme", "rep-1", None).unwrap();
    let globex = store.rep_profile("globex", "rep-1", None).unwrap();
    assert_eq!((acme.calls, globex.calls), (2, 1));
    assert!(acme.suspension.is_some() && globex.suspension.is_none());
    assert!(kinds(&store, "globex").iter().all(|k| k != "rep.suspended"));
    assert!(
        store
            .events_after("globex", 0, 100)
            .unwrap()
            .iter()
            .all(|e| e.tenant == "globex")
    );
    assert!(matches!(
        store.analysis("globex", "c2"),
        Err(StoreError::NotFound(_))
    ));
    assert!(matches!(
        store.rep_profile("initech", "rep-1", None),
        Err(StoreError::NotFound(_))
    ));
    let month = store
        .month("acme", NaiveDate::from_ymd_opt(2026, 11, 1).unwrap(), None)
        .unwrap();
    assert_eq!(month.calls, 2);
    assert_eq!(month.competitors[0].competitor, "销售易");
    assert_eq!(
        (month.competitors[0].mentions, month.competitors[0].answered),
        (2, 0)
    );
}

/// Issue 22, item 11: each tenant's events are numbered 1, 2, 3… on their own, so that no
/// tenant sees gaps left by another's events or can count them; the cursor resumes as before.
#[test]
fn event_sequence_numbers_are_per_tenant_and_contiguous() {
    let mut a = Analyser::new();
    let p = a.playbook.clone();
    let store = SqliteStore::in_memory().unwrap();
    for (i, tenant) in ["acme", "globex", "acme", "globex", "acme"]
        .iter()
        .enumerate()
    {
        let call = a.call(&format!("c{i}"), "rep-1", 1 + i as u32, Kind::Fails);
        store.record(tenant, &call, &p, at(i as i64)).unwrap();
    }
    for tenant in ["acme", "globex"] {
        let seqs: Vec<i64> = store
            .events_after(tenant, 0, 1_000)
            .unwrap()
            .iter()
            .map(|e| e.seq)
            .collect();
        let expected: Vec<i64> = (1..=seqs.len() as i64).collect();
        assert_eq!(seqs, expected, "{tenant}");
        let after_two: Vec<i64> = store
            .events_after(tenant, 2, 1_000)
            .unwrap()
            .iter()
            .map(|e| e.seq)
            .collect();
        assert_eq!(after_two, expected[2..]);
    }
}

/// Issue 22, item 9: the store (transcripts, and unredacted ones when kept) and its WAL and
/// shared-memory files are readable by their owner alone.
#[test]
fn the_store_files_are_private() {
    use std::os::unix::fs::PermissionsExt;
    let dir = std::env::temp_dir().join(format!("callqa-private-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("store.db");
    let mut a = Analyser::new();
    let p = a.playbook.clone();
    let store = SqliteStore::open(&path).unwrap();
    store
        .record("t1", &a.call("c1", "rep-1", 1, Kind::Passes), &p, at(0))
        .unwrap();
    for suffix in ["", "-wal", "-shm"] {
        let file = dir.join(format!("store.db{suffix}"));
        let mode = std::fs::metadata(&file).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{}", file.display());
    }
    drop(store);
    // A store made before this rule is made private when opened.
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
    let _again = SqliteStore::open(&path).unwrap();
    let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn an_enrolled_voice_is_kept_and_learned_ones_are_averaged() {
    use callqa::store::{RepVoice, VoiceSource};
    let store = SqliteStore::in_memory().unwrap();
    let voice = |x: f32, source| RepVoice {
        voiceprint: vec![x, 1.0 - x],
        speech_ms: 1_000,
        source,
    };
    let now = at(0);
    store
        .put_voiceprint("t1", "r", &voice(1.0, VoiceSource::Learned), now)
        .unwrap();
    store
        .put_voiceprint("t1", "r", &voice(0.0, VoiceSource::Learned), now)
        .unwrap();
    let mean = store.voiceprint("t1", "r").unwrap().unwrap();
    assert_eq!((mean.speech_ms, mean.source), (2_000, VoiceSource::Learned));
    assert!(
        (mean.voiceprint[0] - mean.voiceprint[1]).abs() < 1e-6,
        "{mean:?}"
    );
    // Enrolled: it replaces the learned mean, and later calls do not move it.
    store
        .put_voiceprint("t1", "r", &voice(1.0, VoiceSource::Enrolled), now)
        .unwrap();
    store
        .put_voiceprint("t1", "r", &voice(0.0, VoiceSource::Learned), now)
        .unwrap();
    assert_eq!(
        store.voiceprint("t1", "r").unwrap().unwrap(),
        voice(1.0, VoiceSource::Enrolled)
    );
    // Tenants apart; forgetting deletes.
    assert!(store.voiceprint("t2", "r").unwrap().is_none());
    assert!(store.forget_voiceprint("t1", "r").unwrap());
    assert!(store.voiceprint("t1", "r").unwrap().is_none());
}
