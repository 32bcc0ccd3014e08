//! Golden Analyses: the JSON that `callqa` prints for three calls is compared, timings aside, with
//! the files in `tests/golden/`. They were written by the code before the inspection path was
//! unified (issue 15), so a refactoring that changes a judgement fails here.
//!
//! The calls: `examples/call.jsonl` through `playbook test`; pyannote's sample conversation split
//! into a stereo WAV by its reference (as `bench stream` does); and a mono tadhack call.
//! `CALLQA_BLESS=1 cargo test --test golden` writes the files anew, for a change that is meant.
//! Meant so far: issue 18 added `overall`, gave every word a duration of at least 1 ms, and says
//! "not judged: …" for signals that do not apply (the example playbook's comments changed its
//! revision). Issue 16 split the mono call by speaker (its turns, roles and every judgement on
//! them) and renamed `role_source` "none" to "unknown". Issue 17 gave objections their `kind`
//! and left facts about today out of the needs (我们现在用的是小手易).

mod common;

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;

fn golden(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden")
        .join(name)
}

/// Runs callqa and returns its stdout as JSON.
fn analysis(args: &[&str]) -> Value {
    let out = Command::new(env!("CARGO_BIN_EXE_callqa"))
        .args(args)
        .env_remove("CALLQA_STORE")
        .output()
        .expect("run callqa");
    assert!(
        out.status.success(),
        "callqa {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("an Analysis as JSON")
}

/// What depends on the machine's speed, not on the judgement.
fn without_timings(mut v: Value) -> Value {
    if let Some(o) = v.as_object_mut() {
        o.remove("timings");
    }
    v
}

/// Equal, numbers to six significant digits: summing the same f32s in another order (or on another
/// CPU's vector unit) moves the seventh, and that is not a change of judgement.
fn same(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => {
            let (x, y) = (x.as_f64().unwrap(), y.as_f64().unwrap());
            (x - y).abs() <= 1e-6 * x.abs().max(y.abs()).max(1.0)
        }
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(x, y)| same(x, y))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| same(v, w)))
        }
        _ => a == b,
    }
}

fn check(name: &str, got: Value) {
    let got = without_timings(got);
    let path = golden(name);
    if std::env::var_os("CALLQA_BLESS").is_some() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, serde_json::to_string_pretty(&got).unwrap() + "\n").unwrap();
        return;
    }
    let want: Value = serde_json::from_str(&std::fs::read_to_string(&path).expect("golden file"))
        .expect("golden JSON");
    if !same(&got, &without_timings(want)) {
        let dump = std::env::temp_dir().join(format!("callqa-golden-{name}"));
        std::fs::write(&dump, serde_json::to_string_pretty(&got).unwrap()).unwrap();
        panic!(
            "{name}: the Analysis differs from {} (this run's is in {})",
            path.display(),
            dump.display()
        );
    }
}

fn playbook() -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("examples/playbook.toml")
        .display()
        .to_string()
}

#[test]
fn the_text_transcript_analysis_is_unchanged() {
    common::model_dir();
    let transcript = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/call.jsonl");
    let got = analysis(&[
        "playbook",
        "test",
        "--playbook",
        &playbook(),
        "--transcript",
        transcript.to_str().unwrap(),
        "--call-id",
        "call",
        "--call-date",
        "2026-11-26",
        "--rep-id",
        "rep-7",
        "--customer-id",
        "cust-1",
    ]);
    check("call_jsonl.json", got);
}

#[test]
fn the_stereo_recording_analysis_is_unchanged() {
    common::model_dir();
    let channels = callqa::bench::stream::conversation(&common::eval_dir()).unwrap();
    let dir = std::env::temp_dir().join(format!("callqa-golden-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let wav = dir.join("stereo.wav");
    std::fs::write(&wav, common::wav_pcm16(&channels, 16_000)).unwrap();
    let got = analysis(&[
        "analyze",
        wav.to_str().unwrap(),
        "--playbook",
        &playbook(),
        "--call-id",
        "golden-stereo",
        "--call-date",
        "2026-11-26",
        "--rep-id",
        "rep-7",
        "--no-store",
    ]);
    check("stereo_pyannote.json", got);
}

#[test]
fn the_mono_recording_analysis_is_unchanged() {
    common::model_dir();
    let mp3 = common::eval_dir()
        .join("transcripts/en_vcon_tadhack_synthetic/13c605bf-907a-44b9-ab28-60bfd0625df3.mp3");
    let got = analysis(&[
        "analyze",
        mp3.to_str().unwrap(),
        "--playbook",
        &playbook(),
        "--call-id",
        "golden-mono",
        "--call-date",
        "2026-11-26",
        "--rep-id",
        "rep-7",
        "--no-store",
    ]);
    check("mono_tadhack.json", got);
}
