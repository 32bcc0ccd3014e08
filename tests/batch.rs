//! `callqa analyze` over a folder: real recordings of mixed formats and a corrupt file, the
//! JSONL and CSV outputs, metadata from a sidecar, a run killed midway and resumed, and
//! `--jobs 2` against `--jobs 1`.

mod common;

use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn callqa(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_callqa"))
        .args(args)
        .output()
        .expect("run callqa")
}

/// A folder of five real recordings (MP3, FLAC, WAV; one in a subfolder) and a corrupt WAV.
fn recordings(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("callqa-batch-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("week2")).unwrap();
    let eval = common::eval_dir();
    let calls = eval.join("transcripts/en_vcon_tadhack_synthetic");
    for (from, to) in [
        (
            calls.join("09e8fdbd-14d9-4cf9-a702-2893b7d2edd3.mp3"),
            "rep-1_call-a.mp3",
        ),
        (
            calls.join("1068571c-54d8-4ae0-ae57-0027a7806eb5.mp3"),
            "rep-2_call-b.mp3",
        ),
        (
            calls.join("29f6e9af-f9ce-44da-8c7a-0a93ec63b96c.mp3"),
            "week2/rep-1_call-c.mp3",
        ),
        (eval.join("asr/en/whisper/jfk.flac"), "rep-2_call-d.flac"),
        (
            eval.join("asr/zh/funasr/asr_example.wav"),
            "week2/rep-3_call-e.wav",
        ),
    ] {
        std::fs::copy(from, dir.join(to)).unwrap();
    }
    // A WAV header with nothing decodable behind it.
    let mut corrupt = b"RIFF\x24\x00\x00\x00WAVEjunk".to_vec();
    corrupt.extend(std::iter::repeat_n(0x5a, 4000));
    std::fs::write(dir.join("rep-3_call-f.wav"), corrupt).unwrap();
    dir
}

/// The value of a line of the summary table: what follows its label.
fn value(summary: &str, label: &str) -> String {
    summary
        .lines()
        .find_map(|l| l.strip_prefix(label))
        .map(|v| v.trim().to_owned())
        .unwrap_or_else(|| panic!("no {label:?} in {summary}"))
}

fn lines(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// Per call id, the Analysis without its timings (which differ from run to run).
fn by_call(rows: &[Value]) -> BTreeMap<String, Value> {
    rows.iter()
        .filter_map(|r| {
            let mut a = r.get("analysis")?.clone();
            a.as_object_mut().unwrap().remove("timings");
            Some((r["call_id"].as_str().unwrap().to_owned(), a))
        })
        .collect()
}

/// `analyze DIR --playbook examples/playbook.toml`, then `extra`; the calls are recorded in
/// the folder's own store unless `extra` says otherwise.
fn analyze_args(dir: &Path, extra: &[&str]) -> Vec<String> {
    let example = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/playbook.toml");
    let mut args: Vec<String> = ["analyze", dir.to_str().unwrap(), "--playbook", example]
        .map(String::from)
        .to_vec();
    if !extra.iter().any(|a| *a == "--no-store" || *a == "--server") {
        args.extend(["--store".into(), dir.join("store.db").display().to_string()]);
    }
    args.extend(extra.iter().map(|a| a.to_string()));
    args
}

/// A batch run with metadata from the file names and a fixed call date.
fn analyze(dir: &Path, extra: &[&str]) -> Output {
    let mut named = vec![
        "--name-pattern",
        "{rep_id}_{call_id}",
        "--call-date",
        "2026-11-20",
    ];
    named.extend(extra);
    let args = analyze_args(dir, &named);
    callqa(&args.iter().map(String::as_str).collect::<Vec<_>>())
}

#[test]
fn a_folder_is_scored_with_one_row_per_call_and_the_corrupt_file_reported() {
    let dir = recordings("folder");
    let out = dir.join("one.jsonl");
    let csv = dir.join("one.csv");
    let html = dir.join("report.html");
    let meta = dir.join("meta.csv");
    std::fs::write(
        &meta,
        "file,customer_id,call_date\nrep-2_call-b.mp3,cust-9,2026-11-02\n",
    )
    .unwrap();
    let o = analyze(
        &dir,
        &[
            "--jobs",
            "1",
            "--out",
            out.to_str().unwrap(),
            "--csv",
            csv.to_str().unwrap(),
            "--meta",
            meta.to_str().unwrap(),
            "--report",
            html.to_str().unwrap(),
        ],
    );
    let summary = String::from_utf8_lossy(&o.stdout);
    let log = String::from_utf8_lossy(&o.stderr);
    eprintln!("{summary}\n{log}");
    assert_eq!(
        o.status.code(),
        Some(1),
        "a failed call makes the exit code 1"
    );
    assert_eq!(value(&summary, "calls scored"), "5", "{summary}");
    assert_eq!(value(&summary, "failed"), "1", "{summary}");
    assert!(
        summary.contains("FAILED") && summary.contains("rep-3_call-f.wav"),
        "{summary}"
    );
    assert!(summary.contains("reps below threshold"), "{summary}");
    // Plain progress lines when stderr is not a terminal.
    assert!(log.contains("[6/6]"), "{log}");

    let rows = lines(&out);
    assert_eq!(rows.len(), 6);
    let failed: Vec<&Value> = rows.iter().filter(|r| r.get("error").is_some()).collect();
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0]["call_id"], "call-f");
    assert!(
        failed[0]["error"].as_str().unwrap().contains("audio"),
        "{}",
        failed[0]
    );
    let calls = by_call(&rows);
    // Metadata: from the file name, the sidecar, and the flags.
    assert_eq!(calls["call-a"]["rep_id"], "rep-1");
    assert_eq!(calls["call-b"]["customer_id"], "cust-9");
    assert_eq!(calls["call-b"]["call_date"], "2026-11-02");
    assert_eq!(calls["call-c"]["call_date"], "2026-11-20");
    assert_eq!(calls["call-e"]["language"], "zh");

    let table = std::fs::read_to_string(&csv).unwrap();
    let mut reader = csv::Reader::from_reader(table.as_bytes());
    let header = reader.headers().unwrap().clone();
    assert!(
        header.iter().any(|h| h == "competitor_handling"),
        "{header:?}"
    );
    let records: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
    assert_eq!(records.len(), 6);
    let error_col = header.iter().position(|h| h == "error").unwrap();
    assert_eq!(
        records.iter().filter(|r| !r[error_col].is_empty()).count(),
        1
    );

    // The HTML report: its charts, a radar per rep, the lowest calls with links to the audio,
    // and the failure; headless Chromium renders it.
    let page = std::fs::read_to_string(&html).unwrap();
    for section in [
        "Call scores",
        "Key-question coverage by rep",
        "Competitor mentions over time",
        "Lowest-scoring calls",
        "Files that failed",
    ] {
        assert!(page.contains(section), "{section}");
    }
    assert!(
        page.matches("<svg").count() >= 2 + 3,
        "histogram, heatmap, 3 radars"
    );
    assert!(page.contains("current_system") && page.contains("rep-3"));
    assert!(
        page.contains(".mp3#t="),
        "evidence links into the recordings"
    );
    let png = common::screenshot(&html, (1280, 2400));
    assert!(
        png.len() > 40_000,
        "a blank page is a few kB: {} bytes",
        png.len()
    );

    // --jobs 2 gives the same results.
    let two = dir.join("two.jsonl");
    let o = analyze(
        &dir,
        &[
            "--jobs",
            "2",
            "--out",
            two.to_str().unwrap(),
            "--meta",
            meta.to_str().unwrap(),
        ],
    );
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(by_call(&lines(&two)), calls);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_killed_batch_resumes_without_redoing_finished_calls() {
    let dir = recordings("resume");
    let out = dir.join("results.jsonl");
    let resume = analyze_args(&dir, &["--jobs", "1", "--out", out.to_str().unwrap()]);
    let mut child = Command::new(env!("CARGO_BIN_EXE_callqa"))
        .args(&resume)
        .stderr(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // Kill it once two calls are written.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(300);
    while std::fs::read_to_string(&out).map_or(0, |t| t.lines().count()) < 2 {
        assert!(std::time::Instant::now() < deadline, "no results written");
        assert!(
            child.try_wait().unwrap().is_none(),
            "finished before the kill"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    let before = lines(&out);
    let scored_before = before
        .iter()
        .filter(|r| r.get("analysis").is_some())
        .count();
    assert!(scored_before < 5, "the kill came too late to test anything");

    let o = callqa(&resume.iter().map(String::as_str).collect::<Vec<_>>());
    let summary = String::from_utf8_lossy(&o.stdout);
    assert!(
        value(&summary, "already scored").starts_with(&format!("{scored_before} ")),
        "{summary}"
    );
    assert_eq!(
        value(&summary, "calls scored"),
        (5 - scored_before).to_string()
    );
    // Every call scored once over both runs; the corrupt file is retried and fails again, with
    // one row.
    let after = lines(&out);
    assert_eq!(after.len(), 6, "{after:?}");
    let ids: Vec<&str> = after
        .iter()
        .filter(|r| r.get("analysis").is_some())
        .map(|r| r["call_id"].as_str().unwrap())
        .collect();
    let mut unique = ids.clone();
    unique.sort();
    unique.dedup();
    assert_eq!((ids.len(), unique.len()), (5, 5), "{ids:?}");

    // --force scores everything again, afresh.
    let args = analyze_args(&dir, &["--out", out.to_str().unwrap(), "--force"]);
    let o = callqa(&args.iter().map(String::as_str).collect::<Vec<_>>());
    assert_eq!(
        value(&String::from_utf8_lossy(&o.stdout), "calls scored"),
        "5"
    );
    assert_eq!(lines(&out).len(), 6);
    std::fs::remove_dir_all(&dir).unwrap();
}

/// `--server` sends the batch to a running service: the same outputs as scoring here.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_sent_to_a_running_service_gives_the_same_results() {
    let dir = std::env::temp_dir().join(format!("callqa-batch-server-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let eval = common::eval_dir();
    std::fs::copy(
        eval.join("asr/en/whisper/jfk.flac"),
        dir.join("rep-1_jfk.flac"),
    )
    .unwrap();
    std::fs::copy(
        eval.join("transcripts/en_vcon_tadhack_synthetic/2c9117a9-a427-4425-aa75-388e91ef8cba.mp3"),
        dir.join("rep-2_call.mp3"),
    )
    .unwrap();
    let (addr, stop, server) = common::start_server(common::server_config(1, None)).await;

    let (local, remote) = (dir.join("local.jsonl"), dir.join("remote.jsonl"));
    let run = |out: PathBuf, extra: Vec<String>| {
        let dir = dir.clone();
        tokio::task::spawn_blocking(move || {
            let mut args = vec!["--jobs".to_owned(), "2".into(), "--out".into()];
            args.push(out.to_str().unwrap().into());
            args.extend(extra);
            analyze(&dir, &args.iter().map(String::as_str).collect::<Vec<_>>())
        })
    };
    let o = run(remote.clone(), vec!["--server".into(), addr.clone()])
        .await
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let o = run(local.clone(), vec!["--no-store".into()]).await.unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let (here, there) = (by_call(&lines(&local)), by_call(&lines(&remote)));
    assert_eq!(there.len(), 2);
    assert_eq!(here, there);

    stop.send(()).unwrap();
    server.await.unwrap().unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
}
