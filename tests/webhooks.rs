//! Webhooks against a real HTTP receiver on a loopback port that is down, then up: every event
//! arrives, in order, signed; an endpoint that gives up records failures that a replay delivers.

mod common;

use common::{Received, receiver};

use callqa::delivery::{Endpoint, Retry, run_endpoint, verify};
use callqa::store::{SqliteStore, Store};
use std::sync::Arc;
use std::time::Duration;

const SECRET: &str = "whsec-0123456789abcdef";

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

async fn wait_for(got: &Received, n: usize, secs: u64) {
    let t0 = std::time::Instant::now();
    while got.lock().unwrap().len() < n {
        assert!(
            t0.elapsed().as_secs() < secs,
            "{} of {n} arrived",
            got.lock().unwrap().len()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_receiver_that_is_down_then_up_gets_every_event_signed() {
    let dir = common::model_dir();
    let mut analyser = callqa::service::engines::Analyser::new(&dir).unwrap();
    let playbook = callqa::analysis::playbook::Playbook::load(std::path::Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/examples/playbook.toml"
    )))
    .unwrap();
    let turns: Vec<callqa::transcript::Turn> =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/examples/call.jsonl"))
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
    let store = Arc::new(SqliteStore::in_memory().unwrap());
    for (tenant, call) in [("acme", "c1"), ("globex", "g1"), ("acme", "c2")] {
        let info = callqa::analysis::CallInfo {
            call_id: call.into(),
            rep_id: Some("rep-1".into()),
            ..Default::default()
        };
        let a = analyser.run(&playbook, info, turns.clone()).unwrap();
        store
            .record(tenant, &a, &playbook, chrono::Utc::now())
            .unwrap();
    }
    let expected = store.events_after("acme", 0, 1_000).unwrap();
    assert!(expected.len() >= 4, "{expected:?}");

    // The receiver is down when delivery starts, and comes up two seconds later.
    let port = free_port();
    let notify = Arc::new(tokio::sync::Notify::new());
    let retry = Retry {
        first_delay: Duration::from_millis(100),
        max_delay: Duration::from_millis(400),
        attempts: 50,
    };
    let endpoint = Endpoint {
        tenant: "acme".into(),
        url: format!("http://127.0.0.1:{port}/hook"),
        secret: SECRET.into(),
    };
    let store_dyn: Arc<dyn Store> = store.clone();
    let delivery = tokio::spawn(run_endpoint(
        store_dyn.clone(),
        endpoint.clone(),
        retry,
        notify.clone(),
    ));
    tokio::time::sleep(Duration::from_secs(2)).await;
    let got: Received = Arc::default();
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .unwrap();
    tokio::spawn(receiver(listener, got.clone()));
    wait_for(&got, expected.len(), 30).await;

    let now = chrono::Utc::now().timestamp();
    let received: Vec<serde_json::Value> = got
        .lock()
        .unwrap()
        .iter()
        .map(|(signature, body)| {
            assert!(
                verify(SECRET, signature, body, now, Duration::from_secs(300)),
                "bad signature {signature:?}"
            );
            serde_json::from_slice(body).unwrap()
        })
        .collect();
    let ids: Vec<&str> = received.iter().map(|e| e["id"].as_str().unwrap()).collect();
    let want: Vec<&str> = expected.iter().map(|e| e.id.as_str()).collect();
    assert_eq!(ids, want, "every event of the tenant, in order, once");
    assert!(received.iter().all(|e| e["tenant"] == "acme"));
    assert_eq!(
        store.webhook_cursor(&endpoint.url, "acme").unwrap(),
        expected.last().unwrap().seq
    );
    assert!(store.webhook_failures("acme").unwrap().is_empty());
    delivery.abort();

    // An endpoint that gives up quickly: its events are recorded as failed, and a replay
    // delivers them once the receiver is back.
    let port = free_port();
    let quick = Retry {
        first_delay: Duration::from_millis(20),
        max_delay: Duration::from_millis(20),
        attempts: 2,
    };
    let dead = Endpoint {
        tenant: "globex".into(),
        url: format!("http://127.0.0.1:{port}/hook"),
        secret: SECRET.into(),
    };
    let globex = store.events_after("globex", 0, 1_000).unwrap();
    let delivery = tokio::spawn(run_endpoint(store_dyn, dead.clone(), quick, notify));
    let t0 = std::time::Instant::now();
    while store.webhook_failures("globex").unwrap().len() < globex.len() {
        assert!(t0.elapsed().as_secs() < 30, "failures were not recorded");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let failures = store.webhook_failures("globex").unwrap();
    assert!(
        failures
            .iter()
            .all(|f| f.status == "failed" && !f.last_error.is_empty())
    );
    let got: Received = Arc::default();
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .unwrap();
    tokio::spawn(receiver(listener, got.clone()));
    assert_eq!(store.replay_webhooks("globex", None).unwrap(), globex.len());
    wait_for(&got, globex.len(), 30).await;
    let t0 = std::time::Instant::now();
    while !store.webhook_failures("globex").unwrap().is_empty() {
        assert!(t0.elapsed().as_secs() < 10, "replays not marked delivered");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    delivery.abort();
}
