//! The coaching commands end to end: a batch that writes to the store killed with SIGKILL, the
//! monthly report rendered in headless Chromium, and the CLI around the store.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

fn callqa(args: &[&str], store: &Path) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_callqa"))
        .args(args)
        .env("CALLQA_STORE", store)
        .output()
        .expect("run callqa")
}

fn ok(out: std::process::Output) -> String {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("callqa-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// CrossWOZ dialogues as JSONL transcripts (user = customer, system = agent).
fn crosswoz_transcripts(dir: &Path, n: usize) -> Vec<String> {
    let path = common::eval_dir().join("transcripts/zh_crosswoz/test.json.zip");
    let dialogues = callqa::eval::crosswoz::read(&path).unwrap();
    dialogues
        .iter()
        .take(n)
        .map(|d| {
            let file = dir.join(format!("cw{}.jsonl", d.id));
            let body: String = d
                .transcript()
                .iter()
                .map(|t| format!("{}\n", serde_json::to_string(t).unwrap()))
                .collect();
            std::fs::write(&file, body).unwrap();
            file.to_str().unwrap().to_owned()
        })
        .collect()
}

fn example(name: &str) -> String {
    format!("{}/examples/{name}", env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn a_batch_killed_mid_write_leaves_whole_calls_and_their_events() {
    common::model_dir();
    let dir = temp_dir("sigkill");
    let db = dir.join("store.db");
    let files = crosswoz_transcripts(&dir, 120);
    let playbook = example("playbook.toml");
    let mut args = vec![
        "playbook",
        "test",
        "--playbook",
        &playbook,
        "--rep-id",
        "rep-9",
        "--transcript",
    ];
    args.extend(files.iter().map(String::as_str));

    let mut child = Command::new(env!("CARGO_BIN_EXE_callqa"))
        .args(&args)
        .env("CALLQA_STORE", &db)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Kill it once some calls are in, while it is still writing.
    let stored = |db: &Path| -> i64 {
        rusqlite::Connection::open(db)
            .and_then(|c| c.query_row("SELECT COUNT(*) FROM calls", [], |r| r.get(0)))
            .unwrap_or(0)
    };
    let started = std::time::Instant::now();
    while stored(&db) < 10 {
        assert!(
            started.elapsed().as_secs() < 120,
            "the batch stored nothing"
        );
        assert!(child.try_wait().unwrap().is_none(), "finished too soon");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();

    let conn = rusqlite::Connection::open(&db).unwrap();
    let check: String = conn
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(check, "ok");
    let count = |sql: &str| -> i64 { conn.query_row(sql, [], |r| r.get(0)).unwrap() };
    let calls = count("SELECT COUNT(*) FROM calls");
    assert!(calls >= 10 && calls < files.len() as i64, "{calls}");
    // Every call is whole: its analysis, its turns, its scores, and its analysis.completed event.
    assert_eq!(count("SELECT COUNT(*) FROM analyses"), calls);
    assert_eq!(
        count(
            "SELECT COUNT(*) FROM calls c WHERE (SELECT COUNT(*) FROM turns t WHERE t.tenant = c.tenant AND t.call_id = c.call_id) = 0"
        ),
        0
    );
    assert_eq!(
        count("SELECT COUNT(DISTINCT call_id) FROM dimension_scores"),
        calls
    );
    assert_eq!(
        count(
            "SELECT COUNT(DISTINCT json_extract(payload, '$.call_id')) FROM events WHERE kind = 'analysis.completed'"
        ),
        calls
    );
    assert_eq!(
        count("SELECT COUNT(*) FROM events WHERE kind = 'analysis.completed'"),
        calls,
        "no event without its call, no call without its event"
    );
    drop(conn);

    // Running the batch again completes it; the calls already stored are replaced, not doubled.
    ok(callqa(&args, &db));
    let conn = rusqlite::Connection::open(&db).unwrap();
    let count = |sql: &str| -> i64 { conn.query_row(sql, [], |r| r.get(0)).unwrap() };
    assert_eq!(count("SELECT COUNT(*) FROM calls"), files.len() as i64);
    assert_eq!(
        count("SELECT COUNT(*) FROM calls WHERE analyses = 2"),
        calls,
        "the calls stored before the kill were analysed again"
    );
    assert_eq!(
        count("SELECT COUNT(*) FROM dimension_scores"),
        6 * files.len() as i64
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn the_monthly_report_renders_in_chromium_with_a_six_axis_radar_per_rep() {
    common::model_dir();
    let dir = temp_dir("report");
    let db = dir.join("store.db");
    let playbook = example("playbook.toml");
    let call = example("call.jsonl");
    // Two reps; one of them leaves a competitor unanswered twice and is suspended.
    let fails = dir.join("fails.jsonl");
    let text = std::fs::read_to_string(&call).unwrap().replace(
        "明白。和销售易相比，我们的客户资料归公司所有，离职一键交接，而且两周就能上线。",
        "好的，那我们再联系。",
    );
    std::fs::write(&fails, text).unwrap();
    let fails_again = dir.join("fails-again.jsonl");
    std::fs::copy(&fails, &fails_again).unwrap();
    for (rep, date, files) in [
        ("wang", "2026-11-10", vec![call.as_str()]),
        (
            "li",
            "2026-11-12",
            vec![fails.to_str().unwrap(), fails_again.to_str().unwrap()],
        ),
    ] {
        let mut args = vec![
            "playbook",
            "test",
            "--playbook",
            &playbook,
            "--rep-id",
            rep,
            "--call-date",
            date,
            "--transcript",
        ];
        args.extend(files);
        ok(callqa(&args, &db));
    }
    let profile: serde_json::Value =
        serde_json::from_str(&ok(callqa(&["report", "rep", "li"], &db))).unwrap();
    assert_eq!(profile["calls"], 2);
    assert_eq!(
        profile["suspension"]["calls"],
        serde_json::json!(["fails", "fails-again"])
    );
    let events = ok(callqa(&["events"], &db));
    let kinds: Vec<String> = events
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["kind"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    for kind in [
        "analysis.completed",
        "competitor.mentioned",
        "emotion.alert",
        "coaching.assigned",
        "rep.suspended",
    ] {
        assert!(kinds.iter().any(|k| k == kind), "{kind} in {kinds:?}");
    }
    let reinstated = ok(callqa(&["coaching", "complete", "li"], &db));
    assert!(reinstated.contains("rep.reinstated"), "{reinstated}");
    let missing = callqa(&["report", "rep", "nobody"], &db);
    assert!(String::from_utf8_lossy(&missing.stderr).contains("rep nobody not found"));

    let html = dir.join("report.html");
    ok(callqa(
        &[
            "report",
            "month",
            "2026-11",
            "--out",
            html.to_str().unwrap(),
            "--lang",
            "zh",
        ],
        &db,
    ));
    let page = std::fs::read_to_string(&html).unwrap();
    assert!(page.contains("<html lang=\"zh\">") && page.contains("过程健康度报告"));
    assert_eq!(page.matches("<svg").count(), 2, "a radar per rep");
    let radar = &page[page.find("<svg").unwrap()..page.find("</svg>").unwrap()];
    for label in [
        "需求挖掘深度",
        "方案匹配精度",
        "风险预判及时性",
        "竞品应对",
        "异议处理",
        "客户情绪管理",
    ] {
        assert!(radar.contains(label), "{label} on the radar");
    }
    assert!(page.contains("竞品对标话术训练包") && page.contains("销售易"));
    // In English: the English half of the names, and the radar's legend.
    let english = dir.join("report-en.html");
    ok(callqa(
        &[
            "report",
            "month",
            "2026-11",
            "--out",
            english.to_str().unwrap(),
            "--lang",
            "en",
        ],
        &db,
    ));
    let en = std::fs::read_to_string(&english).unwrap();
    assert!(en.contains("<html lang=\"en\">") && en.contains("Process health report"));
    assert!(en.contains("needs discovery") && en.contains("team average"));
    assert!(!en.contains("1 calls") && !en.contains("1 reps"));

    // A real browser renders it: headless Chromium takes the screenshot.
    let png = common::screenshot(&html, (1280, 1800));
    let width = u32::from_be_bytes(png[16..20].try_into().unwrap());
    assert_eq!(width, 1280);
    // A blank page compresses to a few kilobytes; two radars, tables and text do not.
    assert!(png.len() > 40_000, "{} bytes", png.len());
    std::fs::remove_dir_all(&dir).unwrap();
}
