//! The gRPC service on a loopback port, with the real models.

mod common;

use callqa::engines::{self, WhisperChoice};
use callqa::proto::transcription_client::TranscriptionClient;
use callqa::proto::{Language, TranscribeRequest};
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
    let load = move |e: callqa::server::Engines| {
        release_rx.recv().ok(); // hold loading until the test has seen NOT_SERVING
        e.set_whisper(
            engines::whisper(&dir, &WhisperChoice::parse("base"), 2).map_err(|e| e.to_string())?,
        );
        Ok(())
    };
    let server = tokio::spawn(callqa::server::serve(listener, 1, load, async {
        stop_rx.await.ok();
    }));

    let url = format!("http://{addr}");
    let mut health = loop {
        match tonic::transport::Channel::from_shared(url.clone())
            .unwrap()
            .connect()
            .await
        {
            Ok(channel) => break HealthClient::new(channel),
            Err(_) => tokio::time::sleep(std::time::Duration::from_millis(20)).await,
        }
    };
    let status = |h: &mut HealthClient<_>| {
        let mut h = h.clone();
        async move {
            h.check(HealthCheckRequest {
                service: String::new(),
            })
            .await
            .unwrap()
            .into_inner()
            .status
        }
    };
    assert_eq!(status(&mut health).await, ServingStatus::NotServing as i32);

    let mut client = TranscriptionClient::connect(url.clone()).await.unwrap();
    let audio = std::fs::read(common::eval_dir().join("asr/en/whisper/jfk.flac")).unwrap();
    let early = client
        .transcribe(TranscribeRequest {
            audio: audio.clone(),
            language: Language::En as i32,
        })
        .await
        .unwrap_err();
    assert_eq!(early.code(), tonic::Code::Unavailable, "{early:?}");

    release_tx.send(()).unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while status(&mut health).await != ServingStatus::Serving as i32 {
        assert!(std::time::Instant::now() < deadline, "never became SERVING");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }

    let reply = client
        .transcribe(TranscribeRequest {
            audio,
            language: Language::Auto as i32,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(reply.language, "en");
    assert_eq!(reply.duration_ms, 11_000);
    let text: String = reply
        .segments
        .iter()
        .map(|s| s.text.as_str())
        .collect::<Vec<_>>()
        .join(" ");
    assert!(
        text.contains("ask not what your country can do for you"),
        "{text}"
    );

    let bad = client
        .transcribe(TranscribeRequest {
            audio: b"definitely not audio".repeat(10),
            language: 0,
        })
        .await
        .unwrap_err();
    assert_eq!(bad.code(), tonic::Code::InvalidArgument, "{bad:?}");
    let empty = client
        .transcribe(TranscribeRequest {
            audio: vec![],
            language: 0,
        })
        .await
        .unwrap_err();
    assert_eq!(empty.code(), tonic::Code::InvalidArgument, "{empty:?}");

    stop_tx.send(()).unwrap();
    server.await.unwrap().unwrap();
}
