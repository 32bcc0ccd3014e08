//! `callqa serve`: the gRPC service. The store and the playbooks are opened before the port, so
//! that a bad one is an error at start; the models load while health says NOT_SERVING.

use crate::cli::args::ServeArgs;
use anyhow::{Context, Result};
use callqa::delivery::Endpoint;
use callqa::server::{self, ApiKeys, Playbooks, ServerConfig, Shutdown};
use callqa::service::Models;
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

pub fn run(a: ServeArgs) -> Result<ExitCode> {
    let read = |p: &Path| std::fs::read(p).with_context(|| format!("{}", p.display()));
    let tls = match (&a.tls_cert, &a.tls_key) {
        (Some(cert), Some(key)) => Some((read(cert)?, read(key)?)),
        _ => None,
    };
    let mut hooks = a.webhooks.clone().unwrap_or_default();
    if let Some(path) = &a.webhooks_file {
        hooks.push('\n');
        hooks.push_str(
            &std::fs::read_to_string(path).with_context(|| format!("{}", path.display()))?,
        );
    }
    let mut config = ServerConfig {
        max_concurrent: a.max_concurrent,
        store: Arc::new(a.store.open()?),
        playbooks: Arc::new(Playbooks::open(&a.playbooks)?),
        api_keys: ApiKeys::load(a.api_keys_file.as_deref(), a.api_keys.as_deref())?,
        webhooks: Endpoint::parse_list(&hooks)?,
        tls,
        metrics: None, // bound inside the runtime
        streams: server::StreamLimits {
            config_timeout: Duration::from_secs(a.stream_config_seconds.max(1)),
            idle_timeout: Duration::from_secs(a.stream_idle_seconds.max(1)),
        },
    };
    println!("store: {}", a.store.path().display());
    let (dir, choice, pool) = (a.models.dir(), a.whisper.choice(), a.whisper.pool());
    let load: server::Load = Box::new(move || Models::load(&dir, &choice, &pool));
    let drain = Duration::from_secs(a.drain_seconds);
    let runtime = tokio::runtime::Runtime::new()?;
    let served = runtime.block_on(async move {
        if let Some(addr) = a.metrics_addr {
            let (listener, local) = server::bind(addr)
                .await
                .with_context(|| format!("cannot listen on {addr} for metrics"))?;
            println!("metrics at http://{local}/metrics");
            config.metrics = Some(listener);
        }
        let (listener, local) = server::bind(a.addr)
            .await
            .with_context(|| format!("cannot listen on {}", a.addr))?;
        println!(
            "callqa listening on {local} (gRPC; health NOT_SERVING until the models are loaded)"
        );
        let shutdown = Shutdown::new();
        let on_signal = shutdown.clone();
        tokio::spawn(async move {
            let mut term =
                tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
                    .expect("SIGTERM handler");
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {},
                _ = term.recv() => {},
            }
            eprintln!("shutting down: finishing the calls in progress (at most {drain:?})");
            on_signal.begin.cancel();
            // Past the deadline the calls still running stop; accepted calls are in the store,
            // so a call cut short is analysed again at the next start.
            tokio::time::sleep(drain).await;
            eprintln!("drain deadline passed; stopping the calls still running");
            on_signal.deadline.cancel();
        });
        let deadline = shutdown.deadline.clone();
        tokio::select! {
            served = server::serve(listener, config, load, shutdown) => {
                served.map_err(|e| anyhow::anyhow!("{e}"))?;
            }
            // Work that cannot stop at once (an analyser in the middle of a call) is not waited
            // for long.
            _ = async {
                deadline.cancelled().await;
                tokio::time::sleep(Duration::from_secs(5)).await;
            } => eprintln!("exiting"),
        }
        Ok(ExitCode::SUCCESS)
    });
    runtime.shutdown_timeout(Duration::from_secs(1));
    served
}
