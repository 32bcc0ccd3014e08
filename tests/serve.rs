//! The gRPC service on a loopback port, with the real models.

mod common;

use callqa::asr::pool::PoolConfig;
use callqa::proto::transcription_client::TranscriptionClient;
use callqa::proto::{Language, Role, TranscribeRequest};
use callqa::service::engines::WhisperChoice;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_turns_serving_after_loading_and_transcribe_works() {
    let dir = common::model_dir();
    let (listener, addr) = callqa::server::bind("127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let (release_tx, release_rx) = std::sync::mpsc::channel::<()>();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let load: callqa::server::Load = Box::new(move || {
        release_rx.recv().ok(); // hold loading until the test has seen NOT_SERVING
        callqa::service::Models::load(
            &dir,
            &WhisperChoice::parse("base"),
            &PoolConfig::for_cores(2),
        )
    });
    let server = tokio::spawn(callqa::server::serve(
        listener,
        common::server_config(1, None),
        load,
        common::stopped_by(stop_rx),
    ));

    let url = format!("http://{addr}");
    let channel = loop {
        match tonic::transport::Channel::from_shared(url.clone())
            .unwrap()
            .connect()
            .await
        {
            Ok(channel) => break channel,
            Err(_) => tokio::time::sleep(std::time::Duration::from_millis(20)).await,
        }
    };
    let mut health = HealthClient::new(channel.clone());
    let mut status = async || {
        health
            .check(HealthCheckRequest {
                service: String::new(),
            })
            .await
            .unwrap()
            .into_inner()
            .status
    };
    assert_eq!(status().await, ServingStatus::NotServing as i32);

    let mut client = TranscriptionClient::new(channel);
    let jfk = std::fs::read(common::eval_dir().join("asr/en/whisper/jfk.flac")).unwrap();
    let request = |audio: Vec<u8>| TranscribeRequest {
        audio,
        ..Default::default()
    };
    let early = client.transcribe(request(jfk.clone())).await.unwrap_err();
    assert_eq!(early.code(), tonic::Code::Unavailable, "{early:?}");

    release_tx.send(()).unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while status().await != ServingStatus::Serving as i32 {
        assert!(std::time::Instant::now() < deadline, "never became SERVING");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }

    let reply = client.transcribe(request(jfk)).await.unwrap().into_inner();
    assert_eq!(reply.language, "en");
    assert_eq!(reply.duration_ms, 11_000);
    assert_eq!(
        reply.layout, "duplicated",
        "jfk.flac carries the same signal on both channels"
    );
    let text: String = reply
        .turns
        .iter()
        .map(|s| s.text.as_str())
        .collect::<Vec<_>>()
        .join(" ");
    assert!(
        text.contains("ask not what your country can do for you"),
        "{text}"
    );
    assert!(
        reply
            .turns
            .iter()
            .all(|t| t.role == Role::Unknown as i32 && t.channel.is_none())
    );

    // A stereo call with the roles swapped by the caller, and a hotword.
    let agent = common::speech("asr/zh/wenet/aishell-BAC009S0724W0121.wav");
    let mut left = agent.clone();
    left.extend(vec![0.0; 16_000 * 5]);
    let mut right = vec![0.0; agent.len() + 16_000];
    right.extend(
        common::speech("asr/zh/fireredasr/BAC009S0764W0121.wav")
            .into_iter()
            .take(16_000 * 4),
    );
    right.truncate(left.len());
    let stereo = common::wav_pcm16(&[left, right], 16_000);
    let reply = client
        .transcribe(TranscribeRequest {
            audio: stereo,
            language: Language::Zh as i32,
            channel_roles: vec![Role::Customer as i32, Role::Agent as i32],
            hotwords: vec!["房地产".into()],
            playbook: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(reply.layout, "per_channel");
    let roles: Vec<i32> = reply.turns.iter().map(|t| t.role).collect();
    assert_eq!(
        roles,
        vec![Role::Customer as i32, Role::Agent as i32],
        "{:?}",
        reply.turns
    );
    assert!(
        reply
            .turns
            .iter()
            .all(|t| t.role_source == "channel" && !t.words.is_empty())
    );
    // Each turn carries its channel and what it sounded like.
    let channels: Vec<Option<u32>> = reply.turns.iter().map(|t| t.channel).collect();
    assert_eq!(channels, vec![Some(0), Some(1)]);
    assert!(
        reply.turns.iter().all(|t| t
            .prosody
            .is_some_and(|p| p.energy_db > -60.0 && p.pitch_hz.is_some())),
        "{:?}",
        reply.turns
    );

    let bad = client
        .transcribe(request(b"definitely not audio".repeat(10)))
        .await
        .unwrap_err();
    assert_eq!(bad.code(), tonic::Code::InvalidArgument, "{bad:?}");
    let empty = client
        .transcribe(TranscribeRequest::default())
        .await
        .unwrap_err();
    assert_eq!(empty.code(), tonic::Code::InvalidArgument, "{empty:?}");

    // A client that gives up on a long call stops its work: the only slot is free again at
    // once, not after the minutes the whole call would take.
    let mut long = Vec::new();
    let calls = common::eval_dir().join("transcripts/en_vcon_tadhack_synthetic");
    let mut mp3s: Vec<_> = std::fs::read_dir(&calls)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "mp3"))
        .collect();
    mp3s.sort();
    for mp3 in mp3s {
        long.extend(common::load_16k(&mp3));
    }
    let long = common::wav_pcm16(&[long], 16_000);
    let gave_up = tokio::time::timeout(
        std::time::Duration::from_secs(2),
        client.transcribe(request(long)),
    )
    .await;
    assert!(gave_up.is_err(), "the long call finished in 2 s?");
    let freed = std::time::Instant::now();
    loop {
        let jfk = std::fs::read(common::eval_dir().join("asr/en/whisper/jfk.flac")).unwrap();
        match client.transcribe(request(jfk)).await {
            Ok(_) => break,
            Err(e) if e.code() == tonic::Code::ResourceExhausted => {
                assert!(
                    freed.elapsed().as_secs() < 15,
                    "the abandoned call kept its slot"
                );
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            }
            Err(e) => panic!("{e:?}"),
        }
    }

    stop_tx.send(()).unwrap();
    server.await.unwrap().unwrap();
}

/// With a certificate the service speaks TLS: a client that trusts it gets through, a
/// plaintext one does not.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_is_served_when_a_certificate_is_given() {
    let certified = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
    let cert_pem = certified.cert.pem();
    let key_pem = certified.signing_key.serialize_pem();
    let mut config = common::server_config(1, None);
    config.tls = Some((cert_pem.clone().into_bytes(), key_pem.into_bytes()));
    let (listener, addr) = callqa::server::bind("127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let never: callqa::server::Load =
        Box::new(|| Err(callqa::onnx::OnnxError::Run("not loaded in this test".into()).into()));
    let server = tokio::spawn(callqa::server::serve(
        listener,
        config,
        never,
        common::stopped_by(stop_rx),
    ));
    let tls = tonic::transport::ClientTlsConfig::new()
        .ca_certificate(tonic::transport::Certificate::from_pem(&cert_pem))
        .domain_name("localhost");
    let url = format!("https://localhost:{}", addr.port());
    let mut connected = None;
    for _ in 0..200 {
        let endpoint = tonic::transport::Channel::from_shared(url.clone())
            .unwrap()
            .tls_config(tls.clone())
            .unwrap();
        if let Ok(c) = endpoint.connect().await {
            connected = Some(c);
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let mut health = HealthClient::new(connected.expect("a TLS connection"));
    let status = health
        .check(HealthCheckRequest::default())
        .await
        .unwrap()
        .into_inner()
        .status;
    assert!(status == ServingStatus::Serving as i32 || status == ServingStatus::NotServing as i32);
    // Plaintext gets nowhere.
    let plain = tonic::transport::Channel::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect()
        .await;
    let refused = match plain {
        Err(_) => true,
        Ok(c) => HealthClient::new(c)
            .check(HealthCheckRequest::default())
            .await
            .is_err(),
    };
    assert!(refused, "plaintext must not be served");
    stop_tx.send(()).unwrap();
    server.await.unwrap().unwrap();
}
