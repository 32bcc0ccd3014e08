//! StreamCall on a real server on a loopback port: a real two-speaker recording streamed in
//! 100 ms chunks at several times real-time pace. Turns and alerts arrive while it streams,
//! and the final Analysis matches AnalyzeCall's for the same audio.

mod common;

use callqa::bench::stream::{PLAYBOOK, linear16};
use callqa::proto::call_qa_client::CallQaClient;
use callqa::proto::stream_call_request::Request as Message;
use callqa::proto::stream_call_response::Event;
use callqa::proto::{self, AnalyzeCallRequest, AudioEncoding, StreamCallRequest, StreamConfig};
use common::{connect, with_key};
use std::time::{Duration, Instant};
use tokio_stream::StreamExt;
use tonic::Code;

const KEY: &str = "k-acme-0123456789";
const PACE: u32 = 3; // times real time
const CHUNK_MS: usize = 100;

/// A real server with the test's playbook, and `max_concurrent` calls at once.
async fn start_server(
    max_concurrent: usize,
    name: &str,
    metrics: Option<tokio::net::TcpListener>,
) -> (
    String,
    tokio::sync::oneshot::Sender<()>,
    tokio::task::JoinHandle<Result<(), Box<dyn std::error::Error + Send + Sync>>>,
) {
    let dir = std::env::temp_dir().join(format!("callqa-stream-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("relocation.toml"), PLAYBOOK).unwrap();
    let mut server = common::server_config(max_concurrent, Some(&format!("{KEY}=acme")));
    server.metrics = metrics;
    server.playbooks = std::sync::Arc::new(callqa::server::Playbooks::open(&dir).unwrap());
    common::start_server(server).await
}

/// A TCP relay to `addr` for one connection; aborting the task drops both sides at once.
async fn relay(addr: &str) -> (String, tokio::task::JoinHandle<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let local = listener.local_addr().unwrap().to_string();
    let target = addr.to_owned();
    let task = tokio::spawn(async move {
        let (mut client, _) = listener.accept().await.unwrap();
        let mut server = tokio::net::TcpStream::connect(&target).await.unwrap();
        let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
    });
    (local, task)
}

/// The value of a metric sample line, e.g. `callqa_requests_total{method="StreamCall",code="Ok"}`.
fn sample(metrics: &str, name: &str) -> f64 {
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(name)?.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {name} in\n{metrics}"))
}

/// pyannote's sample conversation, split into stereo by its reference diarization (the call
/// `callqa bench stream` sends).
fn stereo_conversation() -> Vec<Vec<f32>> {
    callqa::bench::stream::conversation(&common::eval_dir()).unwrap()
}

fn config(call_id: &str, encoding: AudioEncoding) -> StreamCallRequest {
    StreamCallRequest {
        request: Some(Message::Config(StreamConfig {
            call_id: call_id.into(),
            rep_id: "rep-1".into(),
            customer_id: "cust-1".into(),
            language: proto::Language::En as i32,
            playbook: "relocation".into(),
            call_date: "2026-11-29".into(),
            encoding: encoding as i32,
            sample_rate_hz: 16_000,
            channels: 2,
            ..Default::default()
        })),
    }
}

/// The requests of a stream: the config, then the audio in pieces of `piece_ms`, sent at
/// `PACE`× real time. `sent` learns when the last piece went out.
fn paced(
    first: StreamCallRequest,
    pieces: Vec<Vec<u8>>,
    piece_ms: u64,
    sent: tokio::sync::oneshot::Sender<Instant>,
) -> impl tokio_stream::Stream<Item = StreamCallRequest> {
    let (tx, rx) = tokio::sync::mpsc::channel(4);
    tokio::spawn(async move {
        tx.send(first).await.unwrap();
        let every = Duration::from_millis(piece_ms / u64::from(PACE));
        let mut tick = tokio::time::interval(every);
        for piece in pieces {
            tick.tick().await;
            let msg = StreamCallRequest {
                request: Some(Message::Audio(piece)),
            };
            if tx.send(msg).await.is_err() {
                return;
            }
        }
        let _ = sent.send(Instant::now());
    });
    tokio_stream::wrappers::ReceiverStream::new(rx)
}

/// Every response with the moment it arrived.
async fn receive(
    mut responses: tonic::Streaming<proto::StreamCallResponse>,
) -> Vec<(Instant, Event)> {
    let mut out = Vec::new();
    while let Some(r) = responses.next().await {
        out.push((Instant::now(), r.unwrap().event.unwrap()));
    }
    out
}

fn words(text: &str) -> Vec<String> {
    text.split_whitespace()
        .map(|w| {
            w.trim_matches(|c: char| !c.is_alphanumeric())
                .to_lowercase()
        })
        .filter(|w| !w.is_empty())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_streamed_call_gives_turns_and_alerts_as_it_goes_and_the_same_analysis() {
    let (metrics_listener, metrics_addr) = callqa::server::bind("127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let (addr, stop, server) = start_server(2, "a", Some(metrics_listener)).await;
    let mut client = CallQaClient::new(connect(&addr).await).max_decoding_message_size(64 << 20);

    let channels = stereo_conversation();
    let pcm = linear16(&channels);
    let bytes_per_chunk = 16 * CHUNK_MS * 2 * 2;
    let pieces: Vec<Vec<u8>> = pcm.chunks(bytes_per_chunk).map(<[u8]>::to_vec).collect();
    let (sent_tx, sent_rx) = tokio::sync::oneshot::channel();
    let started = Instant::now();
    let requests = paced(
        config("live-1", AudioEncoding::Linear16),
        pieces,
        CHUNK_MS as u64,
        sent_tx,
    );
    let responses = client
        .stream_call(with_key(KEY, requests))
        .await
        .unwrap()
        .into_inner();
    let events = receive(responses).await;
    let last_sent = sent_rx.await.unwrap();
    eprintln!(
        "streamed {:.1} s of audio in {:.1} s; {} events",
        channels[0].len() as f64 / 16_000.0,
        (last_sent - started).as_secs_f64(),
        events.len()
    );
    for (at, e) in &events {
        let label = match e {
            Event::Turn(t) => format!(
                "turn {} final={} {:?}",
                t.turn_id,
                t.is_final,
                t.turn.as_ref().unwrap().text
            ),
            Event::CompetitorMention(m) => {
                format!("competitor {} at {} ms", m.competitor, m.time_ms)
            }
            Event::EmotionAlert(a) => format!("emotion {} {}", a.kind, a.score),
            Event::KeyQuestionMissing(q) => format!("missing {}", q.id),
            Event::Analysis(_) => "analysis".into(),
        };
        eprintln!("  {:>6.2} s  {label}", (*at - started).as_secs_f64());
    }

    // Turns, interim and final, while the audio was still being sent.
    let during: Vec<&Event> = events
        .iter()
        .filter(|(at, _)| *at < last_sent)
        .map(|(_, e)| e)
        .collect();
    assert!(
        during
            .iter()
            .any(|e| matches!(e, Event::Turn(t) if t.is_final))
    );
    assert!(
        events
            .iter()
            .any(|(_, e)| matches!(e, Event::Turn(t) if !t.is_final))
    );
    // The rival's name, with its strategy pack, before the stream ended.
    let mention = during.iter().find_map(|e| match e {
        Event::CompetitorMention(m) => Some(m),
        _ => None,
    });
    let mention = mention.expect("a competitor alert before the stream ended");
    assert_eq!(mention.competitor, "Chicago Movers");
    assert_eq!(
        mention.strategy_pack.as_ref().unwrap().title,
        "Against Chicago Movers: fixed prices"
    );
    // The key question due at 12 s was never asked: said so during the call.
    assert!(during.iter().any(
        |e| matches!(e, Event::KeyQuestionMissing(q) if q.id == "moving_date" && q.deadline_ms == 12_000)
    ));
    // Every turn id that was announced was finalised, once.
    let mut finals: Vec<u32> = events
        .iter()
        .filter_map(|(_, e)| match e {
            Event::Turn(t) if t.is_final => Some(t.turn_id),
            _ => None,
        })
        .collect();
    let n_finals = finals.len();
    finals.dedup();
    assert_eq!(finals.len(), n_finals);
    assert_eq!(finals, (0..n_finals as u32).collect::<Vec<_>>());

    // The last message is the stored Analysis.
    let Some((_, Event::Analysis(streamed))) = events.last() else {
        panic!("the stream did not end with the Analysis");
    };
    let stored = client
        .get_analysis(with_key(
            KEY,
            proto::GetAnalysisRequest {
                call_id: "live-1".into(),
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(&stored, streamed);

    // AnalyzeCall on the same audio (as a WAV file) gives the same call, but for where the
    // windows were cut.
    let batch = client
        .analyze_call(with_key(
            KEY,
            AnalyzeCallRequest {
                audio: common::wav_pcm16(&channels, 16_000),
                call_id: "batch-1".into(),
                rep_id: "rep-1".into(),
                customer_id: "cust-1".into(),
                language: proto::Language::En as i32,
                playbook: "relocation".into(),
                call_date: "2026-11-29".into(),
                ..Default::default()
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(streamed.duration_ms, batch.duration_ms);
    assert_eq!(streamed.language, batch.language);
    assert_eq!(streamed.playbook_revision, batch.playbook_revision);
    let competitors = |a: &proto::Analysis| {
        let mut c: Vec<(String, i32)> = a
            .competitor_mentions
            .iter()
            .map(|m| (m.competitor.clone(), m.role))
            .collect();
        c.dedup();
        c
    };
    assert_eq!(competitors(streamed), competitors(&batch));
    let coverage = |a: &proto::Analysis| a.key_questions.as_ref().unwrap().percent;
    assert_eq!(coverage(streamed), coverage(&batch));
    // The words per side agree but for the streaming segmentation: live windows close after at
    // most 3 s of speech (for alert latency), so Whisper hears less context. On this noisy 30 s
    // call that is about a third of the words (24 edits over 73 words when measured).
    let (mut edits, mut total) = (0, 0);
    for role in [proto::Role::Agent as i32, proto::Role::Customer as i32] {
        let side = |a: &proto::Analysis| -> Vec<String> {
            a.turns
                .iter()
                .filter(|t| t.role == role)
                .flat_map(|t| words(&t.text))
                .collect()
        };
        let (s, b) = (side(streamed), side(&batch));
        assert!(!b.is_empty());
        edits += callqa::eval::edit_distance(&s, &b);
        total += b.len();
    }
    eprintln!("{edits} word edits over {total} words");
    assert!(edits as f64 <= 0.4 * total as f64);
    let dimensions = |a: &proto::Analysis| {
        a.scorecard
            .as_ref()
            .unwrap()
            .dimensions
            .iter()
            .map(|d| d.id.clone())
            .collect::<Vec<_>>()
    };
    assert_eq!(dimensions(streamed), dimensions(&batch));

    // Prometheus metrics: requests, latency, real-time factor, load and stream events.
    let url = format!("http://{metrics_addr}/metrics");
    let metrics = tokio::task::spawn_blocking(move || {
        ureq::get(&url)
            .call()
            .unwrap()
            .body_mut()
            .read_to_string()
            .unwrap()
    })
    .await
    .unwrap();
    for (name, at_least) in [
        (
            r#"callqa_requests_total{method="StreamCall",code="Ok"}"#,
            1.0,
        ),
        (
            r#"callqa_requests_total{method="AnalyzeCall",code="Ok"}"#,
            1.0,
        ),
        (
            r#"callqa_request_duration_seconds_count{method="AnalyzeCall"}"#,
            1.0,
        ),
        ("callqa_real_time_factor_count", 2.0),
        (
            r#"callqa_stage_duration_seconds_count{stage="transcription"}"#,
            2.0,
        ),
        (
            r#"callqa_stream_events_total{kind="competitor_mention"}"#,
            1.0,
        ),
        (r#"callqa_stream_events_total{kind="turn_final"}"#, 1.0),
        ("callqa_calls_in_progress", 0.0),
        ("callqa_asr_queue_depth", 0.0),
    ] {
        assert!(sample(&metrics, name) >= at_least, "{name} in\n{metrics}");
    }

    stop.send(()).unwrap();
    server.await.unwrap().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streams_refuse_bad_starts_and_free_their_slot_when_the_client_leaves() {
    let (addr, stop, server) = start_server(1, "b", None).await;
    let mut client = CallQaClient::new(connect(&addr).await);
    let audio_first = |bytes: Vec<u8>| StreamCallRequest {
        request: Some(Message::Audio(bytes)),
    };

    // Audio before the config; a raw encoding with no rate; no key.
    let e = client
        .stream_call(with_key(
            KEY,
            tokio_stream::iter(vec![audio_first(vec![0; 10])]),
        ))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument, "{e:?}");
    let mut no_rate = config("x", AudioEncoding::Mulaw);
    if let Some(Message::Config(c)) = &mut no_rate.request {
        c.sample_rate_hz = 0;
    }
    let e = client
        .stream_call(with_key(KEY, tokio_stream::iter(vec![no_rate])))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument, "{e:?}");
    let e = client
        .stream_call(tokio_stream::iter(vec![config("x", AudioEncoding::Mulaw)]))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::Unauthenticated);

    // A container stream that is not audio: INVALID_ARGUMENT, as a message on the stream.
    let garbage = tokio_stream::iter(vec![
        config("bad", AudioEncoding::Container),
        audio_first(b"this is not a recording at all, just text".repeat(200)),
    ]);
    let responses = client
        .stream_call(with_key(KEY, garbage))
        .await
        .unwrap()
        .into_inner();
    let results: Vec<_> = responses.collect().await;
    let e = results.last().unwrap().as_ref().unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument, "{e:?}");

    // A client that leaves mid-call (its connection drops, as when a telephony process dies)
    // frees its slot, the only one: the next call gets in, and nothing of the first is stored.
    let pcm = linear16(&stereo_conversation());
    let (relay_addr, relay) = relay(&addr).await;
    let mut leaving = CallQaClient::new(connect(&relay_addr).await);
    let (tx, rx) = tokio::sync::mpsc::channel(4);
    tx.send(config("left", AudioEncoding::Linear16))
        .await
        .unwrap();
    let mut responses = leaving
        .stream_call(with_key(
            KEY,
            tokio_stream::wrappers::ReceiverStream::new(rx),
        ))
        .await
        .unwrap()
        .into_inner();
    for piece in pcm[..pcm.len() / 2].chunks(6_400) {
        tx.send(audio_first(piece.to_vec())).await.unwrap();
    }
    // Mid-call: the first turn has come back.
    responses.message().await.unwrap().unwrap();
    relay.abort();
    let mut client = CallQaClient::new(connect(&addr).await).max_decoding_message_size(64 << 20);
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let short = tokio_stream::iter(vec![
            config("after", AudioEncoding::Linear16),
            audio_first(pcm[..16_000 * 4 * 2].to_vec()),
        ]);
        match client.stream_call(with_key(KEY, short)).await {
            Ok(r) => {
                let events: Vec<_> = r.into_inner().collect().await;
                let last = events.last().unwrap().as_ref().unwrap();
                assert!(matches!(last.event, Some(Event::Analysis(_))));
                break;
            }
            Err(e) if e.code() == Code::ResourceExhausted && Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Err(e) => panic!("the slot was not freed: {e:?}"),
        }
    }
    drop(tx); // held until now: the stream never ended cleanly
    // The abandoned call was not stored.
    let e = client
        .get_analysis(with_key(
            KEY,
            proto::GetAnalysisRequest {
                call_id: "left".into(),
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::NotFound);

    stop.send(()).unwrap();
    server.await.unwrap().unwrap();
}
