//! Shared helpers for the integration tests: the installed models and the shared eval data.
#![allow(dead_code)]

use callqa::models::ModelDir;
use std::path::PathBuf;

/// The models installed by `make test` (`callqa models install`).
pub fn model_dir() -> ModelDir {
    let dir = ModelDir::new(ModelDir::default_path());
    assert!(
        dir.path.join("ggml-base.bin").is_file(),
        "models are not installed in {}; run `make test` (or `callqa models install`) first",
        dir.path.display()
    );
    dir
}

/// `../shared/eval`, beside the repository.
pub fn eval_dir() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/eval");
    assert!(
        dir.is_dir(),
        "shared evaluation data not found at {}",
        dir.display()
    );
    dir
}

/// (path, reference text) rows of a REFERENCE.tsv.
pub fn references(tsv: &str) -> Vec<(PathBuf, String)> {
    let eval = eval_dir();
    let text = std::fs::read_to_string(eval.join(tsv)).expect("reference file");
    text.lines()
        .skip(1)
        .filter_map(|line| {
            let cols: Vec<&str> = line.split('\t').collect();
            (cols.len() >= 3).then(|| (eval.join(cols[0]), cols[2].to_owned()))
        })
        .collect()
}

pub fn load_16k(path: &std::path::Path) -> Vec<f32> {
    let bytes = std::fs::read(path).expect("read audio");
    callqa::audio::load_16k_mono(bytes).expect("decode").1
}

pub fn threads() -> usize {
    callqa::service::engines::cores()
}

/// The transcription engines, as `callqa transcribe` builds them.
pub fn engines() -> callqa::transcript::Engines {
    let config = callqa::asr::pool::PoolConfig::for_cores(threads());
    callqa::service::engines::transcription(
        &model_dir(),
        &callqa::service::engines::WhisperChoice::parse("base"),
        &config,
    )
    .unwrap()
}

/// The inspection service with every model loaded, as `callqa analyze` opens it.
pub fn inspector() -> callqa::service::Inspector {
    let models = callqa::service::Models::load(
        &model_dir(),
        &callqa::service::engines::WhisperChoice::parse("base"),
        &callqa::asr::pool::PoolConfig::for_cores(threads()),
    )
    .unwrap();
    callqa::service::Inspector::new(models, 2)
}

pub fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

/// A 16-bit PCM WAV in memory from per-channel samples.
pub fn wav_pcm16(channels: &[Vec<f32>], rate: u32) -> Vec<u8> {
    let spec = hound::WavSpec {
        channels: channels.len() as u16,
        sample_rate: rate,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut cursor = std::io::Cursor::new(Vec::new());
    {
        let mut w = hound::WavWriter::new(&mut cursor, spec).unwrap();
        for i in 0..channels[0].len() {
            for c in channels {
                w.write_sample((c[i].clamp(-1.0, 1.0) * 32767.0) as i16)
                    .unwrap();
            }
        }
        w.finalize().unwrap();
    }
    cursor.into_inner()
}

/// A WAV file written by hand, so that its header can say anything (including lies).
pub fn wav_raw(
    format_tag: u16,
    channels: u16,
    rate: u32,
    bits: u16,
    declared_data_len: u32,
    data: &[u8],
) -> Vec<u8> {
    let block_align = channels.saturating_mul(bits / 8);
    let mut out = Vec::new();
    out.extend_from_slice(b"RIFF");
    out.extend_from_slice(
        &((if format_tag != 1 { 38 } else { 36 }) + declared_data_len).to_le_bytes(),
    );
    // Non-PCM formats (G.711, float) carry a cbSize field: an 18-byte fmt chunk.
    let extensible = format_tag != 1;
    out.extend_from_slice(b"WAVEfmt ");
    out.extend_from_slice(&(if extensible { 18u32 } else { 16 }).to_le_bytes());
    out.extend_from_slice(&format_tag.to_le_bytes());
    out.extend_from_slice(&channels.to_le_bytes());
    out.extend_from_slice(&rate.to_le_bytes());
    out.extend_from_slice(&(rate * u32::from(block_align)).to_le_bytes());
    out.extend_from_slice(&block_align.to_le_bytes());
    out.extend_from_slice(&bits.to_le_bytes());
    if extensible {
        out.extend_from_slice(&0u16.to_le_bytes());
    }
    out.extend_from_slice(b"data");
    out.extend_from_slice(&declared_data_len.to_le_bytes());
    out.extend_from_slice(data);
    out
}

/// Decoded 16 kHz mono speech of a shared recording.
pub fn speech(rel: &str) -> Vec<f32> {
    load_16k(&eval_dir().join(rel))
}

/// A service configuration on an in-memory store with the example playbook.
pub fn server_config(max_concurrent: usize, keys: Option<&str>) -> callqa::server::ServerConfig {
    let examples = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("examples");
    callqa::server::ServerConfig {
        max_concurrent,
        store: std::sync::Arc::new(callqa::store::SqliteStore::in_memory().unwrap()),
        playbooks: std::sync::Arc::new(callqa::server::Playbooks::open(&examples).unwrap()),
        api_keys: callqa::server::ApiKeys::parse(keys.unwrap_or_default()).unwrap(),
        webhooks: Vec::new(),
        tls: None,
        metrics: None,
        streams: Default::default(),
    }
}

pub fn with_key<T>(key: &str, msg: T) -> tonic::Request<T> {
    let mut req = tonic::Request::new(msg);
    req.metadata_mut()
        .insert("authorization", format!("Bearer {key}").parse().unwrap());
    req
}

pub async fn connect(addr: &str) -> tonic::transport::Channel {
    let url = format!("http://{addr}");
    for _ in 0..500 {
        if let Ok(c) = tonic::transport::Channel::from_shared(url.clone())
            .unwrap()
            .connect()
            .await
        {
            return c;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    panic!("no server at {addr}");
}

/// Waits until the server's models are loaded (health SERVING).
pub async fn serving(channel: tonic::transport::Channel) {
    use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};
    let mut health = HealthClient::new(channel);
    for _ in 0..600 {
        let status = health
            .check(HealthCheckRequest::default())
            .await
            .map(|r| r.into_inner().status);
        if status.is_ok_and(|s| s == 1) {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("never SERVING");
}

/// A real server on a loopback port with the real models.
pub async fn start_server(
    config: callqa::server::ServerConfig,
) -> (
    String,
    tokio::sync::oneshot::Sender<()>,
    tokio::task::JoinHandle<Result<(), Box<dyn std::error::Error + Send + Sync>>>,
) {
    let dir = model_dir();
    let (listener, addr) = callqa::server::bind("127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let load: callqa::server::Load = Box::new(move || {
        callqa::service::Models::load(
            &dir,
            &callqa::service::engines::WhisperChoice::parse("base"),
            &callqa::asr::pool::PoolConfig::for_cores(2),
        )
    });
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(callqa::server::serve(
        listener,
        config,
        load,
        stopped_by(stop_rx),
    ));
    let addr = addr.to_string();
    serving(connect(&addr).await).await;
    (addr, stop_tx, server)
}

/// A shutdown that begins when `stop` is sent (or dropped).
pub fn stopped_by(stop: tokio::sync::oneshot::Receiver<()>) -> callqa::server::Shutdown {
    let shutdown = callqa::server::Shutdown::new();
    let begin = shutdown.begin.clone();
    tokio::spawn(async move {
        stop.await.ok();
        begin.cancel();
    });
    shutdown
}

/// A PNG of a local HTML page as headless Chromium renders it (`make test` installs chromium).
pub fn screenshot(html: &std::path::Path, (width, height): (u32, u32)) -> Vec<u8> {
    let dir = html.parent().unwrap();
    let shot = dir.join("screenshot.png");
    let out = std::process::Command::new("chromium")
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--hide-scrollbars",
        ])
        .arg(format!("--window-size={width},{height}"))
        .arg(format!(
            "--user-data-dir={}",
            dir.join("chromium").display()
        ))
        .arg(format!("--screenshot={}", shot.display()))
        .arg(format!("file://{}", html.display()))
        .output()
        .expect("chromium (make test installs it)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let png = std::fs::read(&shot).unwrap();
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
    png
}

pub type Received = std::sync::Arc<std::sync::Mutex<Vec<(String, Vec<u8>)>>>;

/// A minimal HTTP/1.1 receiver: keeps (signature header, body) of every POST and answers 200.
pub async fn receiver(listener: tokio::net::TcpListener, got: Received) {
    loop {
        let Ok((mut sock, _)) = listener.accept().await else {
            return;
        };
        let got = got.clone();
        tokio::spawn(async move {
            use tokio::io::{AsyncReadExt, AsyncWriteExt};
            let mut buf = Vec::new();
            let mut chunk = [0u8; 4096];
            let (head_end, length) = loop {
                let n = sock.read(&mut chunk).await.unwrap_or(0);
                if n == 0 {
                    return;
                }
                buf.extend_from_slice(&chunk[..n]);
                if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                    let head = String::from_utf8_lossy(&buf[..i]).to_lowercase();
                    let length = head
                        .lines()
                        .find_map(|l| l.strip_prefix("content-length:"))
                        .and_then(|v| v.trim().parse::<usize>().ok())
                        .unwrap_or(0);
                    break (i + 4, length);
                }
            };
            while buf.len() < head_end + length {
                let n = sock.read(&mut chunk).await.unwrap_or(0);
                if n == 0 {
                    return;
                }
                buf.extend_from_slice(&chunk[..n]);
            }
            let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
            let signature = head
                .lines()
                .find_map(|l| {
                    l.to_lowercase()
                        .starts_with("callqa-signature:")
                        .then(|| l["callqa-signature:".len()..].trim().to_owned())
                })
                .unwrap_or_default();
            got.lock()
                .unwrap()
                .push((signature, buf[head_end..head_end + length].to_vec()));
            let _ = sock
                .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
                .await;
        });
    }
}
