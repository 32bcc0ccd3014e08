//! A pool of Whisper decoding states over one shared model, fed through a bounded queue.
//!
//! whisper.cpp's own server decodes one request at a time. Here N worker threads each own a state
//! (its KV cache and buffers) and share the weights, so N windows decode at once. The queue is
//! bounded: producers wait, so memory never grows without bound.

use super::{AsrError, DecodeOptions, Segment, WhisperModel};
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver, SyncSender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;
use whisper_rs::WhisperState;

/// Pool sizing.
#[derive(Debug, Clone)]
pub struct PoolConfig {
    /// Decoding states (windows decoded at once). Default: the number of cores.
    pub states: usize,
    /// Threads per decode. Default: cores / states, at least 1.
    pub threads_per_state: usize,
    /// Windows that may wait in the queue.
    pub queue: usize,
    /// Word times by DTW alignment (see `WhisperModel::load`).
    pub dtw: bool,
}

impl PoolConfig {
    pub fn for_cores(cores: usize) -> Self {
        let cores = cores.max(1);
        Self {
            states: cores,
            threads_per_state: 1,
            queue: 4 * cores,
            dtw: true,
        }
    }
}

type Reply<T> = mpsc::Sender<Result<T, AsrError>>;

enum Job {
    Transcribe {
        audio: Vec<f32>,
        opts: DecodeOptions,
        reply: Reply<Vec<Segment>>,
    },
    Detect {
        audio: Vec<f32>,
        reply: Reply<String>,
    },
}

pub struct WhisperPool {
    sender: Option<SyncSender<Job>>,
    /// Jobs sent and not yet taken by a worker.
    queued: Arc<AtomicUsize>,
    /// Workers still running (each lowers it as it exits).
    alive: Arc<AtomicUsize>,
    workers: Vec<JoinHandle<()>>,
    multilingual: bool,
}

/// A window's result, to be collected later.
pub type Pending = Receiver<Result<Vec<Segment>, AsrError>>;

impl WhisperPool {
    pub fn load(path: &Path, config: &PoolConfig) -> Result<Self, AsrError> {
        let model = Arc::new(WhisperModel::load(path, config.dtw)?);
        let multilingual = model.is_multilingual();
        let (sender, receiver) = mpsc::sync_channel::<Job>(config.queue.max(1));
        let receiver = Arc::new(Mutex::new(receiver));
        let queued = Arc::new(AtomicUsize::new(0));
        let states = config.states.max(1);
        let alive = Arc::new(AtomicUsize::new(states));
        let mut workers = Vec::new();
        for i in 0..states {
            // Create every state up front, so a model that cannot run fails at load time.
            let state = model.new_state()?;
            let worker = Worker {
                model: model.clone(),
                state,
                threads: config.threads_per_state.max(1),
            };
            let (receiver, queued, alive) = (receiver.clone(), queued.clone(), alive.clone());
            let worker = std::thread::Builder::new()
                .name(format!("whisper-{i}"))
                .spawn(move || {
                    worker.serve(&receiver, &queued);
                    alive.fetch_sub(1, Ordering::Relaxed);
                })
                .map_err(|e| AsrError::Run(format!("cannot start a worker: {e}")))?;
            workers.push(worker);
        }
        Ok(Self {
            sender: Some(sender),
            queued,
            alive,
            workers,
            multilingual,
        })
    }

    /// Workers that can still decode; 0 means the pool cannot serve.
    pub fn alive(&self) -> usize {
        self.alive.load(Ordering::Relaxed)
    }

    pub fn is_multilingual(&self) -> bool {
        self.multilingual
    }

    /// Windows waiting for a worker.
    pub fn queued(&self) -> usize {
        self.queued.load(Ordering::Relaxed)
    }

    /// Sends a job, waiting while the queue is full.
    fn send(&self, job: Job) -> Result<(), AsrError> {
        let sender = self.sender.as_ref().ok_or(AsrError::PoolClosed)?;
        self.queued.fetch_add(1, Ordering::Relaxed);
        sender.send(job).map_err(|_| {
            self.queued.fetch_sub(1, Ordering::Relaxed);
            AsrError::PoolClosed
        })
    }

    /// Queues a window, waiting while the queue is full (backpressure).
    pub fn transcribe(&self, audio: Vec<f32>, opts: DecodeOptions) -> Result<Pending, AsrError> {
        let (reply, pending) = mpsc::channel();
        self.send(Job::Transcribe { audio, opts, reply })?;
        Ok(pending)
    }

    /// The language spoken in `audio`, on the first free state.
    pub fn detect_language(&self, audio: Vec<f32>) -> Result<String, AsrError> {
        let (reply, result) = mpsc::channel();
        self.send(Job::Detect { audio, reply })?;
        result.recv().map_err(|_| AsrError::PoolClosed)?
    }
}

/// One decoding state and the thread that owns it.
struct Worker {
    model: Arc<WhisperModel>,
    state: WhisperState,
    threads: usize,
}

impl Worker {
    /// Takes jobs until the pool is dropped. A job that panics fails alone: its caller gets the
    /// error, the state is made afresh, and the worker goes on.
    fn serve(mut self, receiver: &Mutex<Receiver<Job>>, queued: &AtomicUsize) {
        loop {
            let job = match receiver.lock() {
                Ok(rx) => rx.recv(),
                Err(_) => return,
            };
            let Ok(job) = job else { return }; // the pool was dropped
            queued.fetch_sub(1, Ordering::Relaxed);
            let panicked = match job {
                Job::Transcribe { audio, opts, reply } => {
                    // Generous: base decodes many times faster than real time here.
                    let budget =
                        Duration::from_secs_f32((audio.len() as f32 / 16_000.0 * 4.0).max(20.0));
                    let (result, panicked) = self.guarded(|w| {
                        w.model
                            .transcribe_window(&mut w.state, &audio, &opts, w.threads, budget)
                    });
                    let _ = reply.send(result);
                    panicked
                }
                Job::Detect { audio, reply } => {
                    let (result, panicked) =
                        self.guarded(|w| w.model.detect_language(&mut w.state, &audio, w.threads));
                    let _ = reply.send(result);
                    panicked
                }
            };
            if panicked && self.renew().is_err() {
                return;
            }
        }
    }

    /// Runs `f`, turning a panic into an error; true when it panicked. The panic's message is
    /// not logged: it may quote the call's text.
    fn guarded<T>(
        &mut self,
        f: impl FnOnce(&mut Self) -> Result<T, AsrError>,
    ) -> (Result<T, AsrError>, bool) {
        match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(self))) {
            Ok(result) => (result, false),
            Err(_) => {
                tracing::error!("a Whisper job panicked; the worker goes on with a fresh state");
                let failed = Err(AsrError::Run("the transcription of a window failed".into()));
                (failed, true)
            }
        }
    }

    /// A fresh state after a failure: whatever the failed job left in it is gone.
    fn renew(&mut self) -> Result<(), AsrError> {
        match self.model.new_state() {
            Ok(state) => {
                self.state = state;
                Ok(())
            }
            Err(e) => {
                tracing::error!("a Whisper worker cannot make a new state and stops: {e}");
                Err(e)
            }
        }
    }
}

impl Drop for WhisperPool {
    fn drop(&mut self) {
        self.sender.take(); // workers see the queue close and exit
        for w in self.workers.drain(..) {
            let _ = w.join();
        }
    }
}
