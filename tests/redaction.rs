//! PII redaction on the shared dialogues (no false positives on prices, dates, quantities) and
//! end to end, on a real call that reads out a phone number and an e-mail address
//! (tadhack's 09e8fdbd, synthetic speech): with the playbook's redaction on, neither they nor the
//! self-introduced names appear in AnalyzeCall's and GetAnalysis's replies, StreamCall's events,
//! the webhooks or the SQLite file. Transcribe, which no playbook governs, shows that the
//! originals are in the audio to be found.

mod common;

use callqa::proto::call_qa_client::CallQaClient;
use callqa::proto::stream_call_request::Request as Message;
use callqa::proto::transcription_client::TranscriptionClient;
use callqa::proto::{self, AnalyzeCallRequest, StreamCallRequest, StreamConfig};
use common::{Received, connect, receiver};
use std::time::Duration;

const PLAYBOOK: &str = r#"
name = "yacht enquiry"
[[key_questions]]
id = "phone"
phrasings = ["Can I confirm your phone number?"]
[redaction]
classes = ["phone", "id_card", "bank_card", "email", "name"]
"#;

/// The originals as ASR may write them (digits grouped any way, or spoken), lower-cased.
const ORIGINALS: [&str; 10] = [
    "555-6123",
    "5556123",
    "555 6123",
    "555, 6123",
    "six one two three",
    "patricia.flores",
    "patricia flores",
    "flores@",
    "example.com",
    "daniel rogers",
];

fn leaks(haystack: &str) -> Vec<&'static str> {
    let lower = haystack.to_lowercase();
    ORIGINALS
        .into_iter()
        .filter(|o| lower.contains(o))
        .collect()
}

fn call_audio() -> Vec<u8> {
    std::fs::read(
        common::eval_dir()
            .join("transcripts/en_vcon_tadhack_synthetic/09e8fdbd-14d9-4cf9-a702-2893b7d2edd3.mp3"),
    )
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_unredacted_pii_leaves_the_service() {
    let dir = std::env::temp_dir().join(format!("callqa-redaction-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("playbooks")).unwrap();
    std::fs::write(dir.join("playbooks/yacht.toml"), PLAYBOOK).unwrap();
    let db = dir.join("store.db");

    let hooks = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let hook_url = format!("http://{}/hook", hooks.local_addr().unwrap());
    let got: Received = Received::default();
    tokio::spawn(receiver(hooks, got.clone()));

    let mut config = common::server_config(2, None);
    config.store = std::sync::Arc::new(callqa::store::SqliteStore::open(&db).unwrap());
    config.playbooks =
        std::sync::Arc::new(callqa::server::Playbooks::open(&dir.join("playbooks")).unwrap());
    config.webhooks = callqa::delivery::Endpoint::parse_list(&format!(
        "default {hook_url} whsec-redaction-0123456"
    ))
    .unwrap();
    let (addr, stop_tx, server) = common::start_server(config).await;
    let channel = connect(&addr).await;
    let audio = call_audio();

    // Without a playbook, the transcript holds the originals: what follows can fail.
    let raw = TranscriptionClient::new(channel.clone())
        .transcribe(proto::TranscribeRequest {
            audio: audio.clone(),
            language: proto::Language::En as i32,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let found = leaks(&format!("{raw:?}"));
    assert!(
        found
            .iter()
            .any(|o| o.contains("6123") || o.contains("two three"))
            && found.contains(&"example.com"),
        "the raw transcript should hold the phone number and the address: {found:?}"
    );

    let mut client = CallQaClient::new(channel).max_decoding_message_size(64 << 20);
    let analysis = client
        .analyze_call(AnalyzeCallRequest {
            audio: audio.clone(),
            call_id: "pii-1".into(),
            rep_id: "rep-1".into(),
            language: proto::Language::En as i32,
            playbook: "yacht".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let classes: Vec<&str> = analysis
        .redactions
        .iter()
        .map(|r| r.class.as_str())
        .collect();
    for class in ["phone", "email", "name"] {
        assert!(
            classes.contains(&class),
            "{class} not redacted: {classes:?}"
        );
    }
    let text: String = analysis.turns.iter().map(|t| t.text.as_str()).collect();
    assert!(
        text.contains("[PHONE]") && text.contains("[EMAIL]"),
        "{text}"
    );
    for r in &analysis.redactions {
        let turn = &analysis.turns[r.turn as usize];
        assert!(turn.start_ms <= r.start_ms && r.start_ms < r.end_ms && r.end_ms <= turn.end_ms);
    }
    let stored = client
        .get_analysis(proto::GetAnalysisRequest {
            call_id: "pii-1".into(),
        })
        .await
        .unwrap()
        .into_inner();

    // The same call streamed: every event it sends.
    let (tx, rx) = tokio::sync::mpsc::channel(64);
    tx.send(StreamCallRequest {
        request: Some(Message::Config(StreamConfig {
            call_id: "pii-2".into(),
            playbook: "yacht".into(),
            language: proto::Language::En as i32,
            encoding: proto::AudioEncoding::Container as i32,
            ..Default::default()
        })),
    })
    .await
    .unwrap();
    for piece in audio.chunks(16_000) {
        tx.send(StreamCallRequest {
            request: Some(Message::Audio(piece.to_vec())),
        })
        .await
        .unwrap();
    }
    drop(tx);
    let mut responses = client
        .stream_call(tokio_stream::wrappers::ReceiverStream::new(rx))
        .await
        .unwrap()
        .into_inner();
    let mut events = Vec::new();
    while let Some(r) = responses.message().await.unwrap() {
        events.push(format!("{r:?}"));
    }
    assert!(events.len() > 5, "{events:?}");

    // Webhooks: wait until both calls' events have arrived.
    for _ in 0..300 {
        let bodies = got.lock().unwrap().len();
        if bodies >= 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let webhooks: Vec<String> = got
        .lock()
        .unwrap()
        .iter()
        .map(|(_, body)| String::from_utf8_lossy(body).into_owned())
        .collect();
    assert!(!webhooks.is_empty(), "no webhook arrived");

    let _ = stop_tx.send(());
    server.await.unwrap().unwrap();
    let mut store_bytes = std::fs::read(&db).unwrap();
    if let Ok(wal) = std::fs::read(dir.join("store.db-wal")) {
        store_bytes.extend(wal);
    }
    let store = String::from_utf8_lossy(&store_bytes);
    assert!(
        store.contains("[PHONE]"),
        "the store holds the redacted analysis"
    );

    for (what, text) in [
        ("AnalyzeCall", format!("{analysis:?}")),
        ("GetAnalysis", format!("{stored:?}")),
        ("StreamCall", events.join("\n")),
        ("webhooks", webhooks.join("\n")),
        ("store", store.into_owned()),
    ] {
        let lines: Vec<&str> = text.lines().filter(|l| !leaks(l).is_empty()).collect();
        assert!(
            lines.is_empty(),
            "{what} leaks {:?}: {lines:?}",
            leaks(&text)
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// CrossWOZ's first 50 dialogues are full of prices, times, dates, ratings and quantities: in the
/// turns that do not talk of phones (nor answer a turn that does), nothing is taken for PII; the
/// phone numbers in the others are found, as written, read out in Chinese digits, and cut in two
/// across two turns.
#[test]
fn crosswoz_numbers_that_are_not_pii_stay() {
    let path = common::eval_dir().join("transcripts/zh_crosswoz/crosswoz_test_first50_turns.jsonl");
    let text = std::fs::read_to_string(path).unwrap();
    let (mut checked, mut phones) = (0, 0);
    for line in text.lines() {
        let d: serde_json::Value = serde_json::from_str(line).unwrap();
        let mut asked = false;
        let mut prev = "";
        for turn in d["turns"].as_array().unwrap() {
            let content = turn["content"].as_str().unwrap();
            let before = std::mem::replace(&mut prev, content);
            let phone_talk = asked || content.contains("电话");
            asked = content.contains("电话");
            if !content.chars().any(|c| c.is_ascii_digit()) {
                continue;
            }
            let found = callqa::redact::find(&[content]);
            let number = content
                .split(|c: char| !(c.is_ascii_digit() || c == '-'))
                .any(|n| n.chars().filter(char::is_ascii_digit).count() >= 7);
            if phone_talk && number {
                phones += 1;
                assert!(!found.is_empty(), "missed: {content}");
                let spoken: String = content
                    .chars()
                    .map(|c| match c.to_digit(10) {
                        Some(1) => '幺',
                        Some(d) => "零一二三四五六七八九".chars().nth(d as usize).unwrap(),
                        None => c,
                    })
                    .collect();
                assert!(
                    !callqa::redact::find(&[&spoken]).is_empty(),
                    "missed: {spoken}"
                );
                // The same turn cut in two inside the number, as two windows would hear it.
                let first = found[0].clone();
                let cut = (first.start..first.end)
                    .find(|&i| i > first.start + 3 && content.is_char_boundary(i))
                    .unwrap();
                let halves = callqa::redact::find(&[before, &content[..cut], &content[cut..]]);
                let pieces: Vec<_> = halves.iter().filter(|f| f.value == first.value).collect();
                assert_eq!(pieces.len(), 2, "{content} cut at {cut}: {halves:?}");
            } else if !phone_talk {
                checked += 1;
                assert!(found.is_empty(), "false positive {found:?} in {content}");
            }
        }
    }
    assert!(
        checked > 100 && phones > 5,
        "{checked} turns with numbers, {phones} with phones"
    );
}

/// Check digits decide: an ID number or a card read out with a wrong last digit is not one.
#[test]
fn id_cards_and_bank_cards_are_checked() {
    use callqa::redact::PiiClass;
    let class = |t: &str| callqa::redact::find(&[t]).first().map(|f| f.class);
    assert_eq!(
        class("我的身份证号是11010519491231002X。"),
        Some(PiiClass::IdCard)
    );
    assert_eq!(class("我的身份证号是110105194912310021。"), None);
    assert_eq!(
        class("身份证号幺幺零幺零五幺九四九幺二三幺零零二X"),
        Some(PiiClass::IdCard)
    );
    assert_eq!(
        class("卡号是 4111 1111 1111 1111"),
        Some(PiiClass::BankCard)
    );
    assert_eq!(class("卡号是 4111 1111 1111 1112"), None);
    assert_eq!(
        class("the card is four one one one, one one one one, one one one one, one one one one"),
        Some(PiiClass::BankCard)
    );
}

/// The redacted copy of the call: the phone number is beeped over, so that Whisper no longer
/// hears it, and the rest is the recording's own audio.
#[test]
fn the_redacted_audio_hides_what_the_text_hides() {
    use callqa::audio::mask::AudioMask;
    let inspector = common::inspector();
    let playbook = callqa::analysis::playbook::Playbook::parse(PLAYBOOK, "yacht.toml").unwrap();
    let file = common::eval_dir()
        .join("transcripts/en_vcon_tadhack_synthetic/09e8fdbd-14d9-4cf9-a702-2893b7d2edd3.mp3");
    let meta = callqa::service::CallMeta {
        call_id: Some("pii-audio".into()),
        ..Default::default()
    };
    let opts = callqa::transcript::CallOptions {
        language: callqa::asr::Language::En,
        ..Default::default()
    };
    let recording = callqa::service::Recording::read(&file).unwrap();
    let permit = inspector.permit().unwrap();
    let analysis = inspector
        .recording(&permit, &playbook, recording, meta, &opts)
        .unwrap();
    let phone = analysis
        .redactions
        .iter()
        .find(|r| r.class == callqa::redact::PiiClass::Phone)
        .expect("the phone number is redacted")
        .clone();
    let dir = std::env::temp_dir().join(format!("callqa-redacted-audio-{}", std::process::id()));
    let out =
        callqa::batch::write_redacted_audio(&file, &analysis, &(dir.clone(), AudioMask::Beep))
            .unwrap();

    let original = callqa::audio::decode(std::fs::read(&file).unwrap()).unwrap();
    let masked = callqa::audio::decode(std::fs::read(&out).unwrap()).unwrap();
    assert_eq!(masked.sample_rate, original.sample_rate);
    assert_eq!(masked.channels[0].len(), original.channels[0].len());
    let at = |ms: u64| (ms * u64::from(original.sample_rate) / 1000) as usize;
    let inside = at(phone.start_ms)..at(phone.end_ms);
    let in_span = |i: usize| {
        analysis
            .redactions
            .iter()
            .any(|r| (at(r.start_ms)..at(r.end_ms)).contains(&i))
    };
    for (i, (m, o)) in masked.channels[0]
        .iter()
        .zip(&original.channels[0])
        .enumerate()
    {
        if in_span(i) {
            assert!(m.abs() <= 0.26, "the tone at sample {i}: {m}");
        } else {
            assert!((m - o).abs() < 1e-3, "sample {i}: {m} vs {o}");
        }
    }
    let tone = masked.channels[0][inside.clone()]
        .iter()
        .map(|x| x * x)
        .sum::<f32>()
        / inside.len() as f32;
    assert!(
        (tone.sqrt() - 0.25 / 2f32.sqrt()).abs() < 0.01,
        "RMS {}",
        tone.sqrt()
    );

    let heard = inspector
        .engines()
        .unwrap()
        .transcribe(
            callqa::audio::StreamDecoder::from_file(&out).unwrap(),
            &opts,
        )
        .unwrap();
    let text: String = heard.turns.iter().map(|t| format!("{} ", t.text)).collect();
    let digits: String = text.chars().filter(char::is_ascii_digit).collect();
    assert!(
        !digits.contains("6123") && !digits.contains("5556"),
        "{text}"
    );
    assert!(text.to_lowercase().contains("yacht"), "{text}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// A playbook may keep the unredacted turns: they stay in the store, out of every Analysis, and
/// only a key with the pii permission reads them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_original_is_kept_only_when_asked_and_read_only_with_permission() {
    const READER: &str = "k-reader-0123456789";
    const PLAIN: &str = "k-plain-01234567890";
    let dir = std::env::temp_dir().join(format!("callqa-original-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let keeping = PLAYBOOK.replace("[redaction]", "[redaction]\nkeep_original = true");
    std::fs::write(dir.join("yacht.toml"), keeping).unwrap();
    let keys = format!("{READER}=acme:pii,{PLAIN}=acme");
    let mut config = common::server_config(1, Some(&keys));
    config.playbooks = std::sync::Arc::new(callqa::server::Playbooks::open(&dir).unwrap());
    let (addr, stop_tx, server) = common::start_server(config).await;
    let mut client = CallQaClient::new(connect(&addr).await).max_decoding_message_size(64 << 20);

    let request = AnalyzeCallRequest {
        audio: call_audio(),
        call_id: "pii-kept".into(),
        language: proto::Language::En as i32,
        playbook: "yacht".into(),
        ..Default::default()
    };
    let analysis = client
        .analyze_call(common::with_key(PLAIN, request))
        .await
        .unwrap()
        .into_inner();
    assert!(!analysis.redactions.is_empty());
    assert!(leaks(&format!("{analysis:?}")).is_empty());

    let ask = |key: &str| {
        common::with_key(
            key,
            proto::GetAnalysisRequest {
                call_id: "pii-kept".into(),
            },
        )
    };
    let denied = client
        .get_original_transcript(ask(PLAIN))
        .await
        .unwrap_err();
    assert_eq!(denied.code(), tonic::Code::PermissionDenied);
    let original = client
        .get_original_transcript(ask(READER))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(original.turns.len(), analysis.turns.len());
    assert!(!leaks(&format!("{original:?}")).is_empty(), "{original:?}");
    let missing = client
        .get_original_transcript(common::with_key(
            READER,
            proto::GetAnalysisRequest {
                call_id: "no-such-call".into(),
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(missing.code(), tonic::Code::NotFound);

    let _ = stop_tx.send(());
    server.await.unwrap().unwrap();
    let _ = std::fs::remove_dir_all(&dir);
}
