//! `callqa bench stream`: K concurrent `StreamCall` clients, each sending a real two-speaker
//! conversation at real-time pace to `callqa serve`, started in a process of its own. It measures
//! how long after the end of a spoken competitor name its alert arrives, how long after the end
//! of each turn its final `TurnEvent` arrives (p50 / p95 / max per K), and the service's peak
//! resident size.

use crate::eval::error::bail;
use crate::eval::{Context, EvalError, Result};
use crate::proto::call_qa_client::CallQaClient;
use crate::proto::stream_call_request::Request as Message;
use crate::proto::stream_call_response::Event;
use crate::proto::{self, AudioEncoding, StreamCallRequest, StreamConfig};
use std::collections::HashMap;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// A playbook for the conversation: its speakers name Chicago, here a rival, and nobody asks
/// the key question due in the first 12 s.
pub const PLAYBOOK: &str = r#"
name = "relocation enquiry"
[[key_questions]]
id = "moving_date"
description = "When the customer moves"
phrasings = ["When are you planning to move?"]
within_minutes = 0.2
[[competitors]]
name = "Chicago Movers"
aliases = ["Chicago"]
mentioned_by = "any"
strategy_pack = { title = "Against Chicago Movers: fixed prices" }
"#;

/// pyannote's sample conversation (`diarization/pyannote_sample` in the shared data), split into
/// stereo by its reference diarization: speaker90 on channel 0 (agent), speaker91 on channel 1.
pub fn conversation(eval: &Path) -> Result<Vec<Vec<f32>>> {
    let dir = eval.join("diarization/pyannote_sample");
    let bytes = std::fs::read(dir.join("sample.wav")).context("the pyannote sample")?;
    let (_, mono) = crate::audio::load_16k_mono(bytes)?;
    let mut channels = vec![vec![0.0; mono.len()]; 2];
    let rttm = std::fs::read_to_string(dir.join("sample.rttm")).context("sample.rttm")?;
    for line in rttm.lines() {
        let f: Vec<&str> = line.split_whitespace().collect();
        if f.len() < 8 {
            continue;
        }
        let (start, dur): (f64, f64) = (f[3].parse()?, f[4].parse()?);
        let ch = usize::from(f[7] == "speaker91");
        let a = ((start * 16_000.0) as usize).min(mono.len());
        let b = (((start + dur) * 16_000.0) as usize).min(mono.len());
        channels[ch][a..b].copy_from_slice(&mono[a..b]);
    }
    Ok(channels)
}

/// Interleaved 16-bit little-endian PCM.
pub fn linear16(channels: &[Vec<f32>]) -> Vec<u8> {
    let mut out = Vec::with_capacity(channels[0].len() * channels.len() * 2);
    for i in 0..channels[0].len() {
        for c in channels {
            out.extend_from_slice(&((c[i].clamp(-1.0, 1.0) * 32767.0) as i16).to_le_bytes());
        }
    }
    out
}

/// What one stream measured, in seconds after the moment the audio said it.
#[derive(Default)]
struct Latencies {
    alerts: Vec<f64>,
    turns: Vec<f64>,
}

/// Streams the call at `pace` × real time in `chunk_ms` pieces and times the events.
async fn one_stream(
    addr: String,
    pcm: Vec<u8>,
    call_id: String,
    pace: f64,
    chunk_ms: u64,
) -> Result<Latencies> {
    let mut client = CallQaClient::connect(format!("http://{addr}")).await?;
    let (tx, rx) = tokio::sync::mpsc::channel(8);
    tx.send(StreamCallRequest {
        request: Some(Message::Config(StreamConfig {
            call_id,
            playbook: "relocation".into(),
            language: proto::Language::En as i32,
            encoding: AudioEncoding::Linear16 as i32,
            sample_rate_hz: 16_000,
            channels: 2,
            ..Default::default()
        })),
    })
    .await
    .map_err(|_| EvalError::Data("the stream closed before its config".into()))?;
    let start = tokio::time::Instant::now();
    let chunk_bytes = (16 * chunk_ms * 2 * 2) as usize;
    let sender = tokio::spawn(async move {
        for (i, piece) in pcm.chunks(chunk_bytes).enumerate() {
            // A piece goes out once the audio it holds has been "spoken".
            let due = Duration::from_secs_f64(((i + 1) as u64 * chunk_ms) as f64 / 1000.0 / pace);
            tokio::time::sleep_until(start + due).await;
            let msg = StreamCallRequest {
                request: Some(Message::Audio(piece.to_vec())),
            };
            if tx.send(msg).await.is_err() {
                return;
            }
        }
    });
    let mut responses = client
        .stream_call(tokio_stream::wrappers::ReceiverStream::new(rx))
        .await?
        .into_inner();
    let spoken = |ms: u64| ms as f64 / 1000.0 / pace;
    let mut out = Latencies::default();
    let mut finals: HashMap<u32, proto::Turn> = HashMap::new();
    let mut mentions = Vec::new();
    while let Some(r) = responses.message().await? {
        let at = start.elapsed().as_secs_f64();
        match r.event {
            Some(Event::Turn(t)) if t.is_final => {
                let turn = t.turn.unwrap_or_default();
                out.turns.push(at - spoken(turn.end_ms));
                finals.insert(t.turn_id, turn);
            }
            Some(Event::CompetitorMention(m)) => mentions.push((at, m)),
            _ => {}
        }
    }
    sender.await?;
    // The name ends with the last of its words: found in the turn's word times.
    for (at, m) in mentions {
        let Some(turn) = finals.get(&m.turn) else {
            continue;
        };
        let n = m.heard.split_whitespace().count().max(1);
        let first = turn.words.iter().position(|w| w.end_ms >= m.time_ms);
        let end = first
            .and_then(|i| turn.words.get(i + n - 1))
            .map_or(m.time_ms, |w| w.end_ms);
        out.alerts.push(at - spoken(end));
    }
    Ok(out)
}

fn percentiles(mut v: Vec<f64>) -> String {
    if v.is_empty() {
        return "–".into();
    }
    v.sort_by(f64::total_cmp);
    let at = |q: f64| v[((v.len() - 1) as f64 * q).round() as usize];
    format!("{:.2} / {:.2} / {:.2}", at(0.5), at(0.95), v[v.len() - 1])
}

/// A process's peak resident size (VmHWM), in MB.
fn peak_rss_mb(pid: u32) -> Option<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let kb: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    Some(kb / 1024.0)
}

pub struct Options {
    pub clients: Vec<usize>,
    pub pace: f64,
    pub chunk_ms: u64,
}

/// `callqa serve` in a process of its own (so that its memory is measured alone), on a free
/// loopback port, with the bench's playbook and a store in a temporary folder.
struct Service {
    process: std::process::Child,
    addr: String,
    dir: PathBuf,
}

impl Service {
    /// `model_options`: the options that choose the models (`--model-dir`, `--whisper-model`, …).
    fn start(model_options: &[OsString], max_concurrent: usize) -> Result<Self> {
        let dir = std::env::temp_dir().join(format!("callqa-bench-stream-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("playbooks"))?;
        std::fs::write(dir.join("playbooks/relocation.toml"), PLAYBOOK)?;
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let addr = format!("127.0.0.1:{port}");
        let process = std::process::Command::new(std::env::current_exe()?)
            .arg("serve")
            .args(model_options)
            .args(["--addr", &addr])
            .args(["--max-concurrent", &max_concurrent.to_string()])
            .arg("--playbooks")
            .arg(dir.join("playbooks"))
            .arg("--store")
            .arg(dir.join("store.db"))
            .env_remove("CALLQA_METRICS_ADDR")
            .env_remove("CALLQA_API_KEYS")
            .env_remove("CALLQA_API_KEYS_FILE")
            .env("CALLQA_LOG", "error")
            .stdout(std::process::Stdio::null())
            .spawn()
            .context("cannot start callqa serve")?;
        Ok(Self { process, addr, dir })
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        let _ = self.process.kill();
        let _ = self.process.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Streams the conversation from K clients at once, for each K, and prints one line per K.
pub fn run(model_options: &[OsString], eval: &Path, opts: &Options) -> Result<()> {
    if opts.pace <= 0.0 || opts.chunk_ms == 0 || opts.clients.is_empty() {
        bail!("--pace and --chunk-ms must be positive, and --clients not empty");
    }
    let pcm = linear16(&conversation(eval)?);
    let audio_s = pcm.len() as f64 / 64_000.0;
    let max_k = opts.clients.iter().copied().max().unwrap_or(1);
    let service = Service::start(model_options, max_k)?;
    let pid = service.process.id();
    let addr = service.addr.clone();
    tokio::runtime::Runtime::new()?.block_on(async {
        wait_serving(&addr).await?;
        // A first call loads what is loaded lazily; it is not measured.
        let warm = pcm[..pcm.len().min(64_000 * 5)].to_vec();
        one_stream(addr.clone(), warm, "warm-up".into(), 8.0, opts.chunk_ms).await?;
        println!(
            "{audio_s:.1} s stereo call, {} ms chunks at {}× real time; latencies in seconds after the audio said it",
            opts.chunk_ms, opts.pace
        );
        println!(
            "{:>2}  {:>6}  {:<24}  {:>6}  {:<24}  {:>14}",
            "K", "alerts", "alert p50 / p95 / max", "turns", "final turn p50 / p95 / max", "serve peak RSS"
        );
        for &k in &opts.clients {
            let streams: Vec<_> = (0..k)
                .map(|i| {
                    let id = format!("bench-{k}-{i}");
                    tokio::spawn(one_stream(addr.clone(), pcm.clone(), id, opts.pace, opts.chunk_ms))
                })
                .collect();
            let mut all = Latencies::default();
            for s in streams {
                let l = s.await??;
                all.alerts.extend(l.alerts);
                all.turns.extend(l.turns);
            }
            let rss = peak_rss_mb(pid).map_or("–".into(), |mb| format!("{mb:.0} MB"));
            println!(
                "{k:>2}  {:>6}  {:<24}  {:>6}  {:<24}  {rss:>14}",
                all.alerts.len(),
                percentiles(all.alerts),
                all.turns.len(),
                percentiles(all.turns)
            );
        }
        Ok(())
    })
}

async fn wait_serving(addr: &str) -> Result<()> {
    use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};
    let deadline = Instant::now() + Duration::from_secs(300);
    while Instant::now() < deadline {
        let channel = tonic::transport::Endpoint::from_shared(format!("http://{addr}"))?
            .connect()
            .await;
        if let Ok(channel) = channel
            && let Ok(r) = HealthClient::new(channel)
                .check(HealthCheckRequest::default())
                .await
            && r.into_inner().status == 1
        {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    bail!("the service never became SERVING")
}
