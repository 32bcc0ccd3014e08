//! What an attacker or an unlucky operator broke (issue 22), each reproduced against a real
//! server on a loopback port with the real models and a real store.

mod common;

use callqa::proto::call_qa_client::CallQaClient;
use callqa::proto::stream_call_request::Request as Message;
use callqa::proto::transcription_client::TranscriptionClient;
use callqa::proto::{
    self, AnalyzeCallRequest, AudioEncoding, StreamCallRequest, StreamConfig, TestPlaybookRequest,
    TranscribeRequest, TranscriptTurn,
};
use callqa::store::Store;
use common::{connect, with_key};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio_stream::StreamExt;
use tonic::Code;

const KEY: &str = "k-hardening-0123456789";

struct Server {
    addr: String,
    store: Arc<dyn Store>,
    stop: tokio::sync::oneshot::Sender<()>,
    handle: tokio::task::JoinHandle<Result<(), Box<dyn std::error::Error + Send + Sync>>>,
}

impl Server {
    async fn start(max_concurrent: usize, streams: callqa::server::StreamLimits) -> Self {
        let mut config = common::server_config(max_concurrent, Some(&format!("{KEY}=t1")));
        config.streams = streams;
        let store = config.store.clone();
        let (addr, stop, handle) = common::start_server(config).await;
        Self {
            addr,
            store,
            stop,
            handle,
        }
    }

    async fn calls(&self) -> CallQaClient<tonic::transport::Channel> {
        CallQaClient::new(connect(&self.addr).await).max_decoding_message_size(64 << 20)
    }

    async fn stop(self) {
        self.stop.send(()).unwrap();
        self.handle.await.unwrap().unwrap();
    }
}

/// A stereo call of real Mandarin speech, `repeat` times over (about 9 s each).
fn call_audio(repeat: usize) -> Vec<u8> {
    let agent = common::speech("asr/zh/wenet/aishell-BAC009S0724W0121.wav");
    let customer = common::speech("asr/zh/fireredasr/BAC009S0764W0121.wav");
    let (mut left, mut right) = (Vec::new(), Vec::new());
    for _ in 0..repeat {
        left.extend(&agent);
        left.extend(vec![0.0; 8_000 + customer.len()]);
        right.extend(vec![0.0; agent.len() + 8_000]);
        right.extend(&customer);
    }
    common::wav_pcm16(&[left, right], 16_000)
}

fn analyze(audio: Vec<u8>, call_id: &str) -> tonic::Request<AnalyzeCallRequest> {
    with_key(
        KEY,
        AnalyzeCallRequest {
            audio,
            call_id: call_id.into(),
            rep_id: "rep-1".into(),
            language: proto::Language::Zh as i32,
            playbook: "playbook".into(),
            call_date: "2026-11-26".into(),
            ..Default::default()
        },
    )
}

fn config(call_id: &str) -> StreamCallRequest {
    StreamCallRequest {
        request: Some(Message::Config(StreamConfig {
            call_id: call_id.into(),
            playbook: "playbook".into(),
            encoding: AudioEncoding::Linear16 as i32,
            sample_rate_hz: 16_000,
            channels: 1,
            language: proto::Language::Zh as i32,
            ..Default::default()
        })),
    }
}

fn audio(bytes: Vec<u8>) -> StreamCallRequest {
    StreamCallRequest {
        request: Some(Message::Audio(bytes)),
    }
}

/// Holds the only slot with a stream that sends its config and a little audio, then waits.
async fn hold_a_slot(
    server: &Server,
) -> (
    tokio::sync::mpsc::Sender<StreamCallRequest>,
    tonic::Streaming<proto::StreamCallResponse>,
) {
    let (tx, rx) = tokio::sync::mpsc::channel(4);
    tx.send(config("holder")).await.unwrap();
    tx.send(audio(vec![0; 16_000])).await.unwrap();
    let responses = server
        .calls()
        .await
        .stream_call(with_key(
            KEY,
            tokio_stream::wrappers::ReceiverStream::new(rx),
        ))
        .await
        .unwrap()
        .into_inner();
    (tx, responses)
}

/// Item 1: a NUL in a hotword is refused at the edge, and never takes a Whisper worker down;
/// a panic inside a worker fails its window alone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_nul_in_a_hotword_is_refused_and_the_workers_live() {
    let server = Server::start(2, Default::default()).await;
    let mut client = TranscriptionClient::new(connect(&server.addr).await);
    let good = std::fs::read(common::fixture("zh_pcm16_16k.wav")).unwrap();
    let request = |hotwords: Vec<String>| {
        with_key(
            KEY,
            TranscribeRequest {
                audio: good.clone(),
                hotwords,
                ..Default::default()
            },
        )
    };
    // More times than there are Whisper states.
    for _ in 0..4 {
        let e = client
            .transcribe(request(vec!["销\u{0}售易".into()]))
            .await
            .unwrap_err();
        assert_eq!(e.code(), Code::InvalidArgument, "{e:?}");
        assert!(e.message().contains("hotwords[0]"), "{}", e.message());
    }
    let t = client
        .transcribe(request(vec!["销售易".into()]))
        .await
        .unwrap()
        .into_inner();
    assert!(!t.turns.is_empty());
    server.stop().await;

    // Below the edge: whisper-rs panics on a NUL in the prompt. The window fails; the worker
    // lives and decodes the next one.
    let engines = common::engines();
    let speech = common::speech("asr/zh/wenet/aishell-BAC009S0724W0121.wav");
    let states = callqa::service::engines::cores();
    for _ in 0..states + 1 {
        let bad = callqa::asr::DecodeOptions {
            language: "zh".into(),
            prompt: "销\u{0}售易".into(),
            beam_size: 1,
        };
        let pending = engines.whisper.transcribe(speech.clone(), bad).unwrap();
        assert!(pending.recv().unwrap().is_err());
    }
    assert_eq!(engines.whisper.alive(), states);
    let fine = callqa::asr::DecodeOptions {
        language: "zh".into(),
        prompt: String::new(),
        beam_size: 1,
    };
    let segments = engines
        .whisper
        .transcribe(speech, fine)
        .unwrap()
        .recv()
        .unwrap()
        .unwrap();
    assert!(!segments.is_empty());
}

/// Item 2: TestPlaybook has size limits, counts against the concurrency limit, and stops when
/// its client leaves, so that it cannot stall the calls behind it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn test_playbook_is_bounded_counted_and_stops_when_its_client_leaves() {
    let server = Server::start(1, Default::default()).await;
    let mut client = server.calls().await;
    let playbook = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/playbook.toml"),
    )
    .unwrap();
    let turn = |text: String| TranscriptTurn {
        role: proto::Role::Customer as i32,
        start_ms: 0,
        end_ms: 1_000,
        text,
    };
    let test = |playbook_toml: String, turns: Vec<TranscriptTurn>| {
        with_key(
            KEY,
            TestPlaybookRequest {
                playbook_toml,
                turns,
                ..Default::default()
            },
        )
    };
    // A 180 KB phrasing, a 300 KB turn, too many turns: refused, naming the field.
    let huge_phrase = playbook.replacen(
        "phrasings = [",
        &format!("phrasings = [\"{}\", ", "价".repeat(60_000)),
        1,
    );
    let e = client
        .test_playbook(test(huge_phrase, vec![turn("你好".into())]))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);
    assert!(e.message().contains("phrasings"), "{}", e.message());
    let e = client
        .test_playbook(test(playbook.clone(), vec![turn("贵".repeat(300_000))]))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);
    assert!(e.message().contains("turns[0].text"), "{}", e.message());
    let e = client
        .test_playbook(test(playbook.clone(), vec![turn("好".into()); 6_000]))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);

    // A big request whose client gives up after 300 ms: its work stops, and a call that comes
    // next is not held up behind it.
    let sentence = "我们现在的系统太慢了，价格也太贵，你们能便宜一点吗？".repeat(60);
    let big = test(playbook.clone(), vec![turn(sentence); 4_000]);
    let mut leaving = server.calls().await;
    let mut req = big;
    req.set_timeout(Duration::from_millis(300));
    let e = leaving.test_playbook(req).await.unwrap_err();
    assert!(
        matches!(e.code(), Code::DeadlineExceeded | Code::Cancelled),
        "{e:?}"
    );
    let started = Instant::now();
    let mut analysed = None;
    while started.elapsed() < Duration::from_secs(20) {
        match client
            .analyze_call(analyze(call_audio(1), "after-test"))
            .await
        {
            Ok(a) => {
                analysed = Some(a.into_inner());
                break;
            }
            Err(e) if e.code() == Code::ResourceExhausted => {
                tokio::time::sleep(Duration::from_millis(200)).await
            }
            Err(e) => panic!("{e:?}"),
        }
    }
    let a = analysed.expect("the abandoned TestPlaybook still held the service");
    assert_eq!(a.turns.len(), 2);

    // While a stream holds the only slot, TestPlaybook is refused like any call.
    let (held, _responses) = hold_a_slot(&server).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let e = client
        .test_playbook(test(playbook, vec![turn("你好".into())]))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::ResourceExhausted, "{e:?}");
    drop(held);
    server.stop().await;
}

/// Item 3: a stream that never sends its config, or stops sending, is closed with a clear
/// status and frees its slot.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_streams_are_closed_and_free_their_slot() {
    let limits = callqa::server::StreamLimits {
        config_timeout: Duration::from_secs(1),
        idle_timeout: Duration::from_secs(2),
    };
    let server = Server::start(1, limits).await;
    let mut client = server.calls().await;
    // No config at all.
    let (_silent, rx) = tokio::sync::mpsc::channel::<StreamCallRequest>(1);
    let e = client
        .stream_call(with_key(
            KEY,
            tokio_stream::wrappers::ReceiverStream::new(rx),
        ))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::DeadlineExceeded, "{e:?}");
    // A config and half a second of audio, then nothing.
    let started = Instant::now();
    let (held, responses) = hold_a_slot(&server).await;
    let results: Vec<_> = responses.collect().await;
    let e = results.last().unwrap().as_ref().unwrap_err();
    assert_eq!(e.code(), Code::DeadlineExceeded, "{e:?}");
    assert!(started.elapsed() < Duration::from_secs(10));
    // The only slot is free again.
    let a = client
        .analyze_call(analyze(call_audio(1), "after-idle"))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(a.turns.len(), 2);
    drop(held);
    server.stop().await;
}

/// Items 4 and 6: a request refused for load, or carrying a call id that another request is
/// analysing, neither stores anything nor removes the pending call of the request that owns it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pending_call_is_removed_only_by_the_request_that_owns_it() {
    let server = Server::start(2, Default::default()).await;
    // One slot is held by a stream, the other by a long call.
    let (holder, _holder_responses) = hold_a_slot(&server).await;
    let long = call_audio(6);
    let mut first = server.calls().await;
    let running = tokio::spawn(async move {
        first
            .analyze_call(analyze(long, "crash-long"))
            .await
            .map(|r| r.into_inner())
    });
    let store = server.store.clone();
    let held = |store: &Arc<dyn Store>| {
        store
            .pending()
            .unwrap()
            .iter()
            .any(|p| p.call_id == "crash-long")
    };
    let started = Instant::now();
    while !held(&store) {
        assert!(started.elapsed() < Duration::from_secs(30));
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let mut client = server.calls().await;
    // The same request again: refused for load, at once, and the first one's row stays.
    let refused_at = Instant::now();
    let e = client
        .analyze_call(analyze(call_audio(6), "crash-long"))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::ResourceExhausted, "{e:?}");
    assert!(refused_at.elapsed() < Duration::from_secs(2));
    assert!(held(&store), "a refused request removed the pending call");
    // A big upload refused for load is not stored either.
    let e = client
        .analyze_call(analyze(vec![7; 10 << 20], "big-refused"))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::ResourceExhausted, "{e:?}");
    assert!(
        store
            .pending()
            .unwrap()
            .iter()
            .all(|p| p.call_id != "big-refused")
    );
    // A slot frees; a request with the same call id and bad audio is told the call is busy, and
    // the first request's row stays.
    drop(holder);
    let e = loop {
        match client
            .analyze_call(analyze(b"not audio".repeat(100), "crash-long"))
            .await
        {
            Err(e) if e.code() == Code::ResourceExhausted => {
                tokio::time::sleep(Duration::from_millis(100)).await
            }
            other => break other.unwrap_err(),
        }
    };
    assert_eq!(e.code(), Code::Aborted, "{e:?}");
    assert!(
        held(&store),
        "a request that did not own the call removed it"
    );
    let a = running.await.unwrap().unwrap();
    assert_eq!(a.call_id, "crash-long");
    assert!(!held(&store), "the owner removes its row once stored");
    // Bad audio under a call id that is stored fails alone.
    let e = client
        .analyze_call(analyze(b"not audio".repeat(100), "crash-long"))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument, "{e:?}");
    let stored = store.analysis("t1", "crash-long").unwrap();
    assert_eq!(stored.turns.len(), a.turns.len());
    server.stop().await;
}

/// Item 5: a stream that closes without audio stores nothing, as AnalyzeCall refuses empty audio.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_empty_stream_does_not_overwrite_a_stored_call() {
    let server = Server::start(2, Default::default()).await;
    let mut client = server.calls().await;
    let a = client
        .analyze_call(analyze(call_audio(1), "victim-1"))
        .await
        .unwrap()
        .into_inner();
    let events_before = server.store.events_after("t1", 0, 1_000).unwrap().len();
    let results: Vec<_> = client
        .stream_call(with_key(KEY, tokio_stream::iter(vec![config("victim-1")])))
        .await
        .unwrap()
        .into_inner()
        .collect()
        .await;
    let e = results.last().unwrap().as_ref().unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument, "{e:?}");
    let stored = server.store.analysis("t1", "victim-1").unwrap();
    assert_eq!(stored.turns.len(), a.turns.len());
    let events_after = server.store.events_after("t1", 0, 1_000).unwrap().len();
    assert_eq!(events_before, events_after);
    server.stop().await;
}

/// Item 7: a WAV whose RIFF size is 4 bytes short of the file (data intact) is read as ffmpeg
/// reads it, and the Analysis says that its header was repaired.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wav_with_a_wrong_riff_size_is_read_and_the_repair_said() {
    let server = Server::start(1, Default::default()).await;
    let mut wav = call_audio(1);
    let riff = u32::from_le_bytes(wav[4..8].try_into().unwrap()) - 4;
    wav[4..8].copy_from_slice(&riff.to_le_bytes());
    let a = server
        .calls()
        .await
        .analyze_call(analyze(wav, "short-riff"))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(a.turns.len(), 2);
    let note = a.note.unwrap_or_default();
    assert!(note.contains("RIFF size"), "{note}");
    // A data size of 0xFFFFFFFF (a recorder that never closed its file) too.
    let mut open = call_audio(1);
    let data = open.windows(4).position(|w| w == b"data").unwrap();
    open[data + 4..data + 8].copy_from_slice(&u32::MAX.to_le_bytes());
    let a = server
        .calls()
        .await
        .analyze_call(analyze(open, "open-data"))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(a.turns.len(), 2);
    assert!(a.note.unwrap_or_default().contains("data size"));
    server.stop().await;
}

/// Item 10: ten digits given in answer to a request for a phone number are masked, whatever
/// their area code, wherever the Analysis shows text.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_phone_number_given_on_request_never_leaves_unmasked() {
    let server = Server::start(1, Default::default()).await;
    let mut client = server.calls().await;
    for answer in [
        "Of course it's 5551234567.",
        "Sure, it is five five five, one two three, four five six seven.",
        "It's (555) 123-4567.",
    ] {
        let turns = vec![
            TranscriptTurn {
                role: proto::Role::Agent as i32,
                start_ms: 0,
                end_ms: 4_000,
                text: "May I also have your phone number in case we need to follow up?".into(),
            },
            TranscriptTurn {
                role: proto::Role::Customer as i32,
                start_ms: 4_500,
                end_ms: 8_000,
                text: answer.into(),
            },
        ];
        let a = client
            .test_playbook(with_key(
                KEY,
                TestPlaybookRequest {
                    playbook: "playbook".into(),
                    turns,
                    ..Default::default()
                },
            ))
            .await
            .unwrap()
            .into_inner();
        let json = format!("{a:?}");
        let digits: String = json.chars().filter(char::is_ascii_digit).collect();
        assert!(
            !json.contains("5551234567") && !json.contains("123-4567"),
            "{answer}"
        );
        assert!(!digits.contains("5551234567"), "{answer}");
        assert!(a.turns[1].text.contains("[PHONE]"), "{}", a.turns[1].text);
    }
    server.stop().await;
}
