//! callqa.v1.CallQa on a real server on a loopback port, with the real models and a real store:
//! AnalyzeCall, idempotency, GetAnalysis, ListAnalyses, GetRepProfile, WatchEvents with resume,
//! TestPlaybook, API keys and tenants, overload, and a SIGKILL during work.

mod common;

use callqa::proto::call_qa_client::CallQaClient;
use callqa::proto::{self, AnalyzeCallRequest};
use common::{connect, serving, with_key};
use std::io::BufRead;
use tokio_stream::StreamExt;
use tonic::Code;

const ACME: &str = "k-acme-0123456789";
const GLOBEX: &str = "k-globex-012345678";

/// A stereo call of real Mandarin speech: the agent on channel 0, the customer on 1.
fn stereo_call() -> Vec<u8> {
    let agent = common::speech("asr/zh/wenet/aishell-BAC009S0724W0121.wav");
    let customer = common::speech("asr/zh/fireredasr/BAC009S0764W0121.wav");
    let mut left = agent.clone();
    left.extend(vec![0.0; 8_000 + customer.len()]);
    let mut right = vec![0.0; agent.len() + 8_000];
    right.extend(&customer);
    common::wav_pcm16(&[left, right], 16_000)
}

fn request(audio: Vec<u8>, call_id: &str, rep: &str) -> AnalyzeCallRequest {
    AnalyzeCallRequest {
        audio,
        call_id: call_id.into(),
        rep_id: rep.into(),
        customer_id: "cust-1".into(),
        language: proto::Language::Zh as i32,
        playbook: "playbook".into(),
        call_date: "2026-11-26".into(),
        ..Default::default()
    }
}

/// A real server with the acme and globex keys.
async fn start_server(
    max_concurrent: usize,
) -> (
    String,
    tokio::sync::oneshot::Sender<()>,
    tokio::task::JoinHandle<Result<(), Box<dyn std::error::Error + Send + Sync>>>,
) {
    let keys = format!("{ACME}=acme,{GLOBEX}=globex");
    common::start_server(common::server_config(max_concurrent, Some(&keys))).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_are_analysed_stored_and_watched_per_tenant() {
    let (addr, stop_tx, server) = start_server(1).await;
    let channel = connect(&addr).await;
    let mut client = CallQaClient::new(channel).max_decoding_message_size(64 << 20);
    let audio = stereo_call();

    // No key, a wrong key: UNAUTHENTICATED.
    let e = client
        .analyze_call(request(audio.clone(), "c-1", "rep-1"))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::Unauthenticated);
    let e = client
        .analyze_call(with_key(
            "k-nobody-0123456789",
            request(audio.clone(), "c-1", "rep-1"),
        ))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::Unauthenticated);

    // A real call: analysed, stored, and answered with the whole Analysis.
    let a = client
        .analyze_call(with_key(ACME, request(audio.clone(), "c-1", "rep-1")))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (a.call_id.as_str(), a.rep_id.as_deref()),
        ("c-1", Some("rep-1"))
    );
    assert_eq!(a.turns.len(), 2, "{:?}", a.turns);
    assert_eq!(a.turns[0].role, proto::Role::Agent as i32);
    assert!(a.turns[0].prosody.is_some());
    assert!(a.playbook_revision.starts_with("sha256:"));
    // The message converts back to the crate's Analysis without loss (`analyze --server`).
    let back = callqa::api::convert::analysis_from(a.clone()).unwrap();
    assert_eq!(callqa::api::convert::analysis(back), a);
    assert_eq!(a.scorecard.as_ref().unwrap().dimensions.len(), 6);
    assert_eq!(a.content_hash.as_ref().map(String::len), Some(64));
    let timings = a.timings.unwrap();
    assert!(timings.transcription_ms.is_some_and(|ms| ms > 0));
    assert!(
        timings
            .real_time_factor
            .is_some_and(|rtf| rtf > 0.0 && rtf < 5.0)
    );

    // Idempotent on the call id: the same audio is answered from the store.
    let again = client
        .analyze_call(with_key(ACME, request(audio.clone(), "c-1", "rep-1")))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(again, a);
    let got = client
        .get_analysis(with_key(
            ACME,
            proto::GetAnalysisRequest {
                call_id: "c-1".into(),
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(got, a);
    // Another tenant does not see it.
    let e = client
        .get_analysis(with_key(
            GLOBEX,
            proto::GetAnalysisRequest {
                call_id: "c-1".into(),
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::NotFound);

    // A second call, then the list, newest first, in pages of one.
    client
        .analyze_call(with_key(ACME, request(audio.clone(), "c-2", "rep-2")))
        .await
        .unwrap();
    let page = client
        .list_analyses(with_key(
            ACME,
            proto::ListAnalysesRequest {
                page_size: 1,
                ..Default::default()
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(page.analyses[0].call_id, "c-2");
    let next = client
        .list_analyses(with_key(
            ACME,
            proto::ListAnalysesRequest {
                page_size: 1,
                page_token: page.next_page_token,
                ..Default::default()
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(next.analyses[0].call_id, "c-1");
    assert!(next.next_page_token.is_empty());
    let by_rep = client
        .list_analyses(with_key(
            ACME,
            proto::ListAnalysesRequest {
                rep_id: "rep-1".into(),
                ..Default::default()
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(by_rep.analyses.len(), 1);
    let profile = client
        .get_rep_profile(with_key(
            ACME,
            proto::GetRepProfileRequest {
                rep_id: "rep-1".into(),
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!((profile.calls, profile.dimensions.len()), (1, 6));

    // Events: all of them from the start, then resumed after the first with no gap and no
    // duplicate.
    let mut stream = client
        .watch_events(with_key(ACME, proto::WatchEventsRequest { after_seq: 0 }))
        .await
        .unwrap()
        .into_inner();
    let mut seen = Vec::new();
    while seen
        .iter()
        .filter(|e: &&proto::Event| e.kind == "analysis.completed")
        .count()
        < 2
    {
        seen.push(stream.next().await.unwrap().unwrap());
    }
    drop(stream);
    assert_eq!(
        seen.iter()
            .filter(|e| e.kind == "analysis.completed")
            .count(),
        2,
        "the idempotent repeat wrote no event"
    );
    let mut resumed = client
        .watch_events(with_key(
            ACME,
            proto::WatchEventsRequest {
                after_seq: seen[0].seq,
            },
        ))
        .await
        .unwrap()
        .into_inner();
    for expected in &seen[1..] {
        assert_eq!(&resumed.next().await.unwrap().unwrap(), expected);
    }
    let payload = seen[0].payload.as_ref().unwrap();
    assert!(payload.fields.contains_key("call_id"));
    // A new event reaches a live watcher.
    client
        .analyze_call(with_key(ACME, request(audio.clone(), "c-3", "rep-1")))
        .await
        .unwrap();
    let live = tokio::time::timeout(std::time::Duration::from_secs(10), async {
        loop {
            let e = resumed.next().await.unwrap().unwrap();
            if e.kind == "analysis.completed" {
                return e;
            }
        }
    })
    .await
    .expect("the live event arrived");
    assert!(live.seq > seen.last().unwrap().seq);
    // Globex sees none of acme's events.
    let mut theirs = client
        .watch_events(with_key(GLOBEX, proto::WatchEventsRequest { after_seq: 0 }))
        .await
        .unwrap()
        .into_inner();
    assert!(
        tokio::time::timeout(std::time::Duration::from_millis(1500), theirs.next())
            .await
            .is_err(),
        "no events for globex"
    );

    // TestPlaybook over the example transcript.
    let turns: Vec<proto::TranscriptTurn> =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/examples/call.jsonl"))
            .unwrap()
            .lines()
            .map(|l| {
                let v: serde_json::Value = serde_json::from_str(l).unwrap();
                proto::TranscriptTurn {
                    role: if v["role"] == "agent" {
                        proto::Role::Agent
                    } else {
                        proto::Role::Customer
                    } as i32,
                    start_ms: v["start_ms"].as_u64().unwrap(),
                    end_ms: v["end_ms"].as_u64().unwrap(),
                    text: v["text"].as_str().unwrap().into(),
                }
            })
            .collect();
    let tested = client
        .test_playbook(with_key(
            GLOBEX,
            proto::TestPlaybookRequest {
                playbook: "playbook".into(),
                turns,
                call_date: "2026-11-26".into(),
                ..Default::default()
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(tested.competitor_mentions[0].how, "pinyin");
    assert_eq!(
        tested.summary.unwrap().commitments[0].due.as_deref(),
        Some("2026-12-02")
    );

    // Bad requests: bad audio, an unknown playbook, a bad playbook text.
    let e = client
        .analyze_call(with_key(
            ACME,
            request(b"not audio at all".repeat(20), "c-bad", "rep-1"),
        ))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument, "{e:?}");
    let mut unknown = request(audio.clone(), "c-4", "rep-1");
    unknown.playbook = "no-such-playbook".into();
    let e = client
        .analyze_call(with_key(ACME, unknown))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::NotFound, "{e:?}");
    let e = client
        .test_playbook(with_key(
            ACME,
            proto::TestPlaybookRequest {
                playbook_toml: "name = \"x\"\nsurprise = 1\n".into(),
                ..Default::default()
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);
    assert!(e.message().contains("surprise"), "{e:?}");

    // Overload: one call at a time; a second at once is RESOURCE_EXHAUSTED, not queued.
    let long = std::fs::read(
        common::eval_dir()
            .join("transcripts/en_vcon_tadhack_synthetic/09e8fdbd-14d9-4cf9-a702-2893b7d2edd3.mp3"),
    )
    .unwrap();
    let mut first_client = client.clone();
    let mut slow = request(long.clone(), "c-long", "rep-1");
    slow.language = proto::Language::En as i32;
    let first = tokio::spawn(async move { first_client.analyze_call(with_key(ACME, slow)).await });
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    let mut second = request(long, "c-long-2", "rep-1");
    second.language = proto::Language::En as i32;
    let e = client
        .analyze_call(with_key(ACME, second))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::ResourceExhausted, "{e:?}");
    first.await.unwrap().unwrap();

    stop_tx.send(()).unwrap();
    server.await.unwrap().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_cut_short_by_sigkill_is_analysed_after_restart() {
    common::model_dir();
    let dir = std::env::temp_dir().join(format!("callqa-restart-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let db = dir.join("store.db");
    let start = || {
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_callqa"))
            .args(["serve", "--addr", "127.0.0.1:0"])
            .env("CALLQA_STORE", &db)
            .env(
                "CALLQA_PLAYBOOKS",
                concat!(env!("CARGO_MANIFEST_DIR"), "/examples"),
            )
            .env("CALLQA_API_KEYS", format!("{ACME}=acme"))
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let stdout = std::io::BufReader::new(child.stdout.take().unwrap());
        let addr = stdout
            .lines()
            .map(Result::unwrap)
            .find_map(|l| {
                l.strip_prefix("callqa listening on ")
                    .map(|r| r.split(' ').next().unwrap().to_owned())
            })
            .expect("the listening line");
        (child, addr)
    };
    let (mut child, addr) = start();
    let channel = connect(&addr).await;
    serving(channel.clone()).await;
    let mut client = CallQaClient::new(channel);
    let long = std::fs::read(
        common::eval_dir()
            .join("transcripts/en_vcon_tadhack_synthetic/09e8fdbd-14d9-4cf9-a702-2893b7d2edd3.mp3"),
    )
    .unwrap();
    let mut req = request(long, "c-crash", "rep-1");
    req.language = proto::Language::En as i32;
    let pending = tokio::spawn(async move { client.analyze_call(with_key(ACME, req)).await });
    // Once the call is accepted (durably pending), kill the server mid-analysis.
    let accepted = || {
        rusqlite::Connection::open(&db)
            .and_then(|c| {
                c.query_row("SELECT COUNT(*) FROM pending_calls", [], |r| {
                    r.get::<_, i64>(0)
                })
            })
            .unwrap_or(0)
            > 0
    };
    let t0 = std::time::Instant::now();
    while !accepted() {
        assert!(t0.elapsed().as_secs() < 60, "never accepted");
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    assert!(
        pending.await.unwrap().is_err(),
        "the client saw the server die"
    );

    // Restarted on the same store, the service finishes the call by itself.
    let (mut child, addr) = start();
    let mut client = CallQaClient::new(connect(&addr).await);
    let t0 = std::time::Instant::now();
    let analysis = loop {
        match client
            .get_analysis(with_key(
                ACME,
                proto::GetAnalysisRequest {
                    call_id: "c-crash".into(),
                },
            ))
            .await
        {
            Ok(a) => break a.into_inner(),
            Err(e) if e.code() == Code::NotFound && t0.elapsed().as_secs() < 120 => {
                tokio::time::sleep(std::time::Duration::from_millis(200)).await
            }
            Err(e) => panic!("{e:?}"),
        }
    };
    assert_eq!(analysis.language, "en");
    assert!(!analysis.turns.is_empty());
    let left: i64 = rusqlite::Connection::open(&db)
        .unwrap()
        .query_row("SELECT COUNT(*) FROM pending_calls", [], |r| r.get(0))
        .unwrap();
    assert_eq!(left, 0);
    child.kill().unwrap();
    child.wait().unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Python's grpcio, with no callqa code: it finds the services by reflection, checks health and
/// runs AnalyzeCall (tests/client/reflect_client.py, in the venv `make test` sets up).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_python_grpcio_client_discovers_and_calls_the_service() {
    let root = env!("CARGO_MANIFEST_DIR");
    let python = format!("{root}/target/client-venv/bin/python");
    assert!(
        std::path::Path::new(&python).exists(),
        "{python} is missing: run `make test` (it makes the client venv)"
    );
    let (addr, stop_tx, server) = start_server(2).await;
    let audio = common::eval_dir().join("asr/en/whisper/jfk.flac");
    let client = format!("{root}/tests/client/reflect_client.py");
    let (a, p) = (addr.clone(), python.clone());
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new(p)
            .arg(client)
            .args([a.as_str(), ACME])
            .arg(&audio)
            .output()
    })
    .await
    .unwrap()
    .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let services: Vec<&str> = v["services"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap())
        .collect();
    for s in [
        "callqa.v1.CallQa",
        "callqa.v1.Transcription",
        "grpc.health.v1.Health",
    ] {
        assert!(services.contains(&s), "{s} in {services:?}");
    }
    assert_eq!(v["health"], 1, "SERVING");
    assert_eq!(v["call_id"], "py-1");
    assert!(v["turns"].as_u64().unwrap() >= 1);
    assert_eq!(v["dimensions"], 6);
    assert_eq!(v["without_key_unauthenticated"], true);
    stop_tx.send(()).unwrap();
    server.await.unwrap().unwrap();
}
