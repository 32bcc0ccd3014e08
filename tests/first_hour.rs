//! A QA lead's first hour (issue 18), as they would live it: the `callqa` binary run on real
//! recordings and transcripts, with a store of their own.

mod common;

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn callqa(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_callqa"))
        .args(args)
        .env_remove("CALLQA_STORE")
        .env("LANG", "en_US.UTF-8")
        .output()
        .expect("run callqa")
}

fn ok(out: Output) -> (String, String) {
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    );
    assert!(out.status.success(), "{stdout}\n{stderr}");
    (stdout, stderr)
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("callqa-first-hour-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn example(name: &str) -> String {
    format!("{}/examples/{name}", env!("CARGO_MANIFEST_DIR"))
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// The value of a line of a summary table: what follows its label.
fn value(summary: &str, label: &str) -> String {
    summary
        .lines()
        .find_map(|l| l.strip_prefix(label))
        .map(|v| v.trim().to_owned())
        .unwrap_or_else(|| panic!("no {label:?} in {summary}"))
}

fn zh_clip() -> PathBuf {
    common::eval_dir().join("asr/zh/funasr/asr_example.wav")
}

/// Items 1 and 2: two recordings with the same file name stay two calls; a different recording
/// under a call id the store holds is refused unless `--replace`; a command that only reads
/// never creates a store, and `analyze` says where it recorded.
#[test]
fn recordings_with_one_file_name_stay_apart_and_reads_never_create_a_store() {
    let dir = scratch("dup");
    let db = dir.join("s.db");
    for (day, clip) in [("mon", zh_clip()), ("tue", common::fixture("zh.flac"))] {
        std::fs::create_dir_all(dir.join(day)).unwrap();
        std::fs::copy(clip, dir.join(day).join("call1.wav")).unwrap();
    }
    let (summary, _) = ok(callqa(&[
        "analyze",
        s(&dir.join("mon")),
        s(&dir.join("tue")),
        "--playbook",
        &example("playbook.toml"),
        "--rep-id",
        "alice",
        "--store",
        s(&db),
    ]));
    assert_eq!(value(&summary, "calls scored"), "2", "{summary}");
    assert!(
        summary.contains(&format!("recorded in {}", db.display())),
        "{summary}"
    );
    let (profile, _) = ok(callqa(&["report", "rep", "alice", "--store", s(&db)]));
    let profile: Value = serde_json::from_str(&profile).unwrap();
    assert_eq!(profile["calls"], 2, "{profile}");

    // The same call id for another recording: refused, and the stored call stays; --replace
    // puts the new one in its place.
    let args = |extra: &[&'static str]| {
        let mut a = vec![
            "analyze".to_owned(),
            s(&dir.join("tue/call1.wav")).to_owned(),
            "--playbook".into(),
            example("playbook.toml"),
            "--call-id".into(),
            "mon-1".into(),
            "--out".into(),
            s(&dir.join("o.jsonl")).to_owned(),
            "--store".into(),
            s(&db).to_owned(),
        ];
        a.extend(extra.iter().map(|x| x.to_string()));
        a
    };
    let monday = dir.join("mon/call1.wav");
    let first = [
        "analyze",
        s(&monday),
        "--playbook",
        &example("playbook.toml"),
        "--call-id",
        "mon-1",
        "--store",
        s(&db),
    ];
    ok(callqa(&first));
    let refused = callqa(&args(&[]).iter().map(String::as_str).collect::<Vec<_>>());
    assert_eq!(refused.status.code(), Some(1));
    let summary = String::from_utf8_lossy(&refused.stdout);
    assert!(summary.contains("--replace"), "{summary}");
    ok(callqa(
        &args(&["--replace"])
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>(),
    ));

    // Reading commands never create a store: a missing one is an error naming its path.
    let typo = dir.join("qa-typo.db");
    for read in [
        vec!["report", "month", "2026-11", "--store", s(&typo)],
        vec!["report", "rep", "alice", "--store", s(&typo)],
        vec!["events", "--store", s(&typo)],
        vec!["coaching", "expire", "--store", s(&typo)],
    ] {
        let out = callqa(&read);
        assert!(!out.status.success());
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("qa-typo.db"), "{err}");
        assert!(!typo.exists(), "{read:?} created the store");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Items 3, 4 and 5: a batch that would keep nothing is refused; a rerun writes every call once
/// (a failed file retried has one row), a CSV added on a rerun covers every call, and the
/// summary covers them too; without rep ids the summary says so; a failed file's row has its rep.
#[test]
fn reruns_keep_one_row_per_call_and_the_summary_tells_the_truth() {
    let dir = scratch("rerun");
    let calls = dir.join("calls");
    std::fs::create_dir_all(&calls).unwrap();
    std::fs::write(calls.join("rep-1_a.wav"), stereo_call(0)).unwrap();
    std::fs::write(calls.join("rep-1_b.wav"), stereo_call(1)).unwrap();
    std::fs::write(calls.join("rep-2_broken.wav"), b"RIFF\x24\0\0\0WAVEjunk").unwrap();
    let playbook = example_playbook();
    let run = |extra: &[&str]| {
        let mut a = vec!["analyze", s(&calls), "--playbook", &playbook, "--jobs", "1"];
        a.extend(extra);
        callqa(&a)
    };
    // Nothing kept: refused, at once.
    let nothing = run(&["--no-store"]);
    assert!(!nothing.status.success());
    assert!(String::from_utf8_lossy(&nothing.stderr).contains("nothing would be kept"));

    let out = dir.join("r.jsonl");
    let db = dir.join("s.db");
    // No rep ids: the summary says it cannot name reps.
    let first = run(&["--out", s(&out), "--store", s(&db)]);
    let summary = String::from_utf8_lossy(&first.stdout);
    assert!(summary.contains("no rep ids known"), "{summary}");
    assert!(summary.contains("calls with no rep id"), "{summary}");
    // Per-call lines carry the score.
    assert!(String::from_utf8_lossy(&first.stderr).contains("score "));

    // A rerun with the name pattern and a CSV: the failed file is tried again and has one row,
    // with its rep; the CSV covers the calls skipped now; the summary covers every call.
    let csv = dir.join("r.csv");
    let again = run(&[
        "--out",
        s(&out),
        "--store",
        s(&db),
        "--csv",
        s(&csv),
        "--name-pattern",
        "{rep_id}_{call_id}",
    ]);
    let summary = String::from_utf8_lossy(&again.stdout);
    assert_eq!(value(&summary, "failed"), "1", "{summary}");
    assert!(
        !value(&summary, "average coverage").starts_with('-'),
        "{summary}"
    );
    let rows: Vec<Value> = std::fs::read_to_string(&out)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(rows.len(), 3, "{rows:?}");
    let table = std::fs::read_to_string(&csv).unwrap();
    assert!(table.starts_with('\u{feff}'), "a byte-order mark for Excel");
    let mut reader = csv::Reader::from_reader(table.trim_start_matches('\u{feff}').as_bytes());
    let header = reader.headers().unwrap().clone();
    let records: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
    assert_eq!(records.len(), 3);
    let rep = header.iter().position(|h| h == "rep_id").unwrap();
    let error = header.iter().position(|h| h == "error").unwrap();
    let failed: Vec<_> = records.iter().filter(|r| !r[error].is_empty()).collect();
    assert_eq!(failed.len(), 1);
    assert_eq!(&failed[0][rep], "rep-2");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A short two-sided call: the agent on channel 0, then the customer on channel 1 (real
/// speech from the shared set), so that its roles are known and it is scored. `n` picks the
/// agent's clip.
fn stereo_call(n: usize) -> Vec<u8> {
    let agent = common::speech(
        [
            "asr/zh/funasr/asr_example.wav",
            "asr/zh/fireredasr/BAC009S0764W0121.wav",
        ][n],
    );
    let customer = common::speech("asr/zh/wenet/aishell-BAC009S0724W0121.wav");
    let gap = vec![0.0; 8_000];
    let ch0: Vec<f32> = [&agent[..], &gap, &vec![0.0; customer.len()]].concat();
    let ch1: Vec<f32> = [&vec![0.0; agent.len()][..], &gap, &customer].concat();
    common::wav_pcm16(&[ch0, ch1], 16_000)
}

fn example_playbook() -> String {
    example("playbook.toml")
}

/// Items 6, 7 and 9: `transcribe` output feeds `playbook test`; an edited playbook scores stored
/// calls again without audio, under its new revision; reports are per playbook.
#[test]
fn a_playbook_edit_is_rescored_from_stored_transcripts_and_reports_do_not_mix_playbooks() {
    let dir = scratch("rescore");
    let db = dir.join("s.db");
    // transcribe → playbook test.
    let (json, _) = ok(callqa(&["transcribe", s(&zh_clip())]));
    let transcript = dir.join("t1.json");
    std::fs::write(&transcript, json).unwrap();
    let (analysis, _) = ok(callqa(&[
        "playbook",
        "test",
        "--playbook",
        &example_playbook(),
        "--transcript",
        s(&transcript),
        "--rep-id",
        "alice",
        "--call-date",
        "2026-11-10",
        "--store",
        s(&db),
    ]));
    let analysis: Value = serde_json::from_str(&analysis).unwrap();
    assert!(!analysis["turns"].as_array().unwrap().is_empty());
    let old_revision = analysis["playbook_revision"].as_str().unwrap().to_owned();

    // Edit a pass threshold: rescore takes the stored call, under the new revision.
    let edited = dir.join("playbook.toml");
    let text = std::fs::read_to_string(example_playbook())
        .unwrap()
        .replacen("pass_threshold = 60", "pass_threshold = 10", 1);
    std::fs::write(&edited, text).unwrap();
    let (lines, log) = ok(callqa(&[
        "rescore",
        "--playbook",
        s(&edited),
        "--store",
        s(&db),
    ]));
    assert_eq!(lines.lines().count(), 1, "{lines}");
    assert!(lines.contains(&old_revision), "{lines}");
    assert!(log.contains("scored again under revision"), "{log}");
    let (events, _) = ok(callqa(&["events", "--store", s(&db)]));
    let completed: Vec<Value> = events
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|e| e["kind"] == "analysis.completed")
        .collect();
    assert_eq!(completed.len(), 2);
    assert_ne!(
        completed[0]["payload"]["playbook_revision"],
        completed[1]["payload"]["playbook_revision"]
    );

    // A second playbook with a dimension of the same id: the month's report is per playbook.
    let other = dir.join("other.toml");
    std::fs::write(
        &other,
        "name = \"renewal call\"\n[[dimensions]]\nid = \"needs_discovery\"\nname = \"renewal needs\"\n\
         pass_threshold = 50\nsignals = [{ signal = \"needs_captured\", weight = 1 }]\n\
         [coaching.circuit_breaker]\ndimension = \"needs_discovery\"\n",
    )
    .unwrap();
    ok(callqa(&[
        "playbook",
        "test",
        "--playbook",
        s(&other),
        "--transcript",
        s(&transcript),
        "--call-id",
        "renewal-1",
        "--rep-id",
        "alice",
        "--call-date",
        "2026-11-12",
        "--store",
        s(&db),
    ]));
    let html = dir.join("month.html");
    let (_, said) = ok(callqa(&[
        "report",
        "month",
        "2026-11",
        "--out",
        s(&html),
        "--playbook",
        s(&edited),
        "--store",
        s(&db),
    ]));
    assert!(
        said.contains("renewal call"),
        "other playbooks are named: {said}"
    );
    let page = std::fs::read_to_string(&html).unwrap();
    assert!(
        !page.contains("renewal needs"),
        "no dimension of the other playbook"
    );
    assert!(page.contains("first discovery call"));
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Items 8, 16 and 17: playbook errors in plain words; commands that did nothing say so; one JSON
/// style (compact lines, RFC 3339 to the millisecond, UTC).
#[test]
fn errors_are_plain_commands_say_what_they_did_and_json_has_one_style() {
    let dir = scratch("words");
    let bad = dir.join("bad.toml");
    let text = std::fs::read_to_string(example_playbook())
        .unwrap()
        .replacen("pass_threshold = 60", "pass_threshold = \"60\"", 1);
    std::fs::write(&bad, text).unwrap();
    let out = callqa(&["playbook", "check", s(&bad)]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("dimensions[0].pass_threshold") && err.contains("expected a number"),
        "{err}"
    );

    let empty = dir.join("empty");
    std::fs::create_dir_all(&empty).unwrap();
    let out = callqa(&["analyze", s(&empty), "--playbook", &example_playbook()]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no recordings found in"));

    let db = dir.join("s.db");
    ok(callqa(&[
        "playbook",
        "test",
        "--playbook",
        &example_playbook(),
        "--transcript",
        &example("call.jsonl"),
        "--rep-id",
        "wang",
        "--store",
        s(&db),
    ]));
    let (_, said) = ok(callqa(&["coaching", "expire", "--store", s(&db)]));
    assert!(said.contains("0 suspension(s) ended"), "{said}");
    let (_, said) = ok(callqa(&["events", "failed", "--store", s(&db)]));
    assert!(said.contains("no failed webhook deliveries"), "{said}");
    let (events, _) = ok(callqa(&["events", "--store", s(&db)]));
    for line in events.lines() {
        let e: Value = serde_json::from_str(line).unwrap();
        let at = e["created_at"].as_str().unwrap();
        // 2026-11-30T12:34:56.789Z
        assert_eq!(at.len(), 24, "{at}");
        assert!(at.ends_with('Z') && at.as_bytes()[19] == b'.', "{at}");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Items 10, 12, 13 and 18: the batch report plays its evidence in the page from links relative
/// to it, in the report's language; the summary speaks Chinese; the Analysis has `overall`.
#[test]
fn the_report_plays_evidence_from_relative_links_in_either_language() {
    let dir = scratch("report");
    let calls = dir.join("calls");
    std::fs::create_dir_all(&calls).unwrap();
    std::fs::write(calls.join("a b.wav"), stereo_call(0)).unwrap();
    let out_dir = dir.join("out");
    std::fs::create_dir_all(&out_dir).unwrap();
    let html = out_dir.join("report.html");
    let out = dir.join("r.jsonl");
    let run = |lang: &str| {
        callqa(&[
            "analyze",
            s(&calls),
            "--playbook",
            &example_playbook(),
            "--rep-id",
            "小王",
            "--no-store",
            "--out",
            s(&out),
            "--report",
            s(&html),
            "--lang",
            lang,
        ])
    };
    let (summary, _) = ok(run("zh"));
    assert!(summary.contains("此前已评分"), "{summary}");
    let page = std::fs::read_to_string(&html).unwrap();
    assert!(page.contains("<html lang=\"zh\">") && page.contains("通话质检"));
    assert!(
        page.contains("../calls/a%20b.wav#t="),
        "a link relative to the report"
    );
    assert!(
        page.contains("<audio id=\"player\""),
        "a player in the page"
    );
    assert!(page.contains("data-src=\"../calls/a%20b.wav\""));
    assert!(!page.contains("file://"));
    let (_, _) = ok(run("en"));
    let page = std::fs::read_to_string(&html).unwrap();
    assert!(page.contains("<html lang=\"en\">") && page.contains("1 call scored"));
    assert!(!page.contains("1 calls"));
    assert!(page.contains("None."), "empty tables say so");

    let row: Value = serde_json::from_str(
        std::fs::read_to_string(&out)
            .unwrap()
            .lines()
            .next()
            .unwrap(),
    )
    .unwrap();
    let overall = &row["analysis"]["overall"];
    assert!(
        overall.get("score").is_some() && overall.get("passed").is_some(),
        "{row}"
    );
    for turn in row["analysis"]["turns"].as_array().unwrap() {
        for w in turn["words"].as_array().unwrap() {
            assert!(w["end_ms"].as_u64() > w["start_ms"].as_u64(), "{w}");
        }
    }
    std::fs::remove_dir_all(&dir).unwrap();
}
