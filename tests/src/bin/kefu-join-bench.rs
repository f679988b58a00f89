//! Latency, one node against a cluster, side by side in one run, for issue 16:
//! - **accept → media**: from the customer accepting an invite to both parties' media
//!   being connected (webrtc-rs clients), for `--calls` calls one after another (in
//!   the cluster the agent's client on signaling node 1, the customer's on node 2);
//! - **request → ring**: from a customer's request on the service page (`POST
//!   /api/v1/service/{main_account}/requests`, as web/service.js sends it) to the
//!   agent's workbench event channel (`/ws/events`, as web/workbench.js `listen()`
//!   subscribes) receiving the ring: the first `queue` message whose `ringing` holds
//!   that request's call id. `--calls` requests one after another, each cancelled by
//!   the customer afterwards (`POST /api/v1/service/requests/{id}/cancel`, the
//!   page's cancel button) and its ring seen gone from the workbench before the next.
//!   One unmeasured request first: a node's first request runs its paths cold.
//!   Requests are spread over a second (0–959 ms pauses), as tests/e2e/ring-latency.mjs
//!   does, so the nodes' one-second call sweep is met at every phase. In the cluster
//!   the request goes to signaling node 2 and the workbench listens on node 1, so the
//!   ring crosses Redis (node 2 dispatches under the Redis lease and publishes the
//!   change on the call channel; node 1 reads the call from PostgreSQL and pushes the
//!   queue).
//!
//! The cluster is two signaling nodes in this process and two `kefu serve --role
//! media` processes on Redis, PostgreSQL and Ceph radosgw (run under
//! deploy/with-redis.sh, with-postgres.sh and with-radosgw.sh: `make bench-join`).

use std::time::{Duration, Instant};

use clap::Parser;
use futures_util::{SinkExt, StreamExt};
use kefu_proto::signaling::ServerMessage;
use kefu_tests::cluster::{engines, start_cluster};
use kefu_tests::scenario::{
    PASSWORD, accepted_invite, enterprise_with_agent, reception_group, service_request, verify,
};
use kefu_tests::{RtcClient, TestServer, spawn_app_with};
use serde_json::{Value, json};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;

/// Attempts per minute per address on the benchmark's nodes (all its calls come from
/// one address).
const ATTEMPTS: u32 = 10_000;

/// How long a ring (or its end) may take before the run is called broken.
const RING_WAIT: Duration = Duration::from_secs(10);

#[derive(Parser, Debug)]
struct Args {
    /// Calls (and service requests) per setup.
    #[arg(long, default_value_t = 20)]
    calls: usize,
}

/// Whether `client` was told its media is up.
async fn connected(client: &RtcClient) -> bool {
    client
        .messages
        .lock()
        .await
        .iter()
        .any(|m| matches!(m, ServerMessage::MediaConnected))
}

/// Milliseconds from accepting each invite to both media connections, with the agent
/// on `agent_node` and the customer on `customer_node`.
async fn joins(agent_node: &TestServer, customer_node: &TestServer, calls: usize) -> Vec<f64> {
    let (alice, _boss) = enterprise_with_agent(agent_node).await;
    let mut times = Vec::new();
    for _ in 0..calls {
        verify(agent_node, "alice", true).await;
        let started = Instant::now();
        let (id, agent_token, customer_token) = accepted_invite(agent_node, &alice, "video").await;
        let (agent, customer) = tokio::join!(
            RtcClient::join_with_token(agent_node, &agent_token, "agent"),
            RtcClient::join_with_token(customer_node, &customer_token, "customer"),
        );
        while !(connected(&agent).await && connected(&customer).await) {
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "call {id} never connected"
            );
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        times.push(started.elapsed().as_secs_f64() * 1000.0);
        customer.hang_up();
        agent_node
            .wait_for_call_state(&id, &alice, "ended", Duration::from_secs(10))
            .await;
        let _ = tokio::join!(agent.pc.close(), customer.pc.close());
    }
    times
}

/// A workbench's event channel on `node`, subscribed with the agent's session `token`
/// (as web/workbench.js `listen()` does): every message, stamped when it arrived.
/// Returns once the server confirmed the subscription, so no later change is missed.
async fn workbench_events(
    node: &TestServer,
    token: &str,
) -> (
    mpsc::UnboundedReceiver<(Instant, Value)>,
    tokio::task::JoinHandle<()>,
) {
    let (mut socket, _) = tokio_tungstenite::connect_async(format!("{}/events", node.ws_url))
        .await
        .expect("event channel");
    let subscribe = json!({"type": "subscribe", "session": token}).to_string();
    socket
        .send(Message::Text(subscribe.into()))
        .await
        .expect("subscribe");
    let (tx, mut rx) = mpsc::unbounded_channel();
    let reader = tokio::spawn(async move {
        while let Some(Ok(message)) = socket.next().await {
            let at = Instant::now();
            let Message::Text(text) = message else {
                continue;
            };
            let event: Value = serde_json::from_str(&text).expect("event channel sends JSON");
            if tx.send((at, event)).is_err() {
                return;
            }
        }
    });
    let confirmed = tokio::time::timeout(RING_WAIT, async {
        while let Some((_, event)) = rx.recv().await {
            assert_ne!(event["type"], "error", "subscription refused: {event}");
            if event["type"] == "subscribed" {
                return;
            }
        }
        panic!("the event channel closed before subscribing");
    })
    .await;
    confirmed.expect("the event channel confirms the subscription");
    (rx, reader)
}

/// For a `queue` message: whether the call `id` rings in it. `None` for any other
/// message (a refusal ends the run).
fn rings_in_queue(event: &Value, id: &str) -> Option<bool> {
    assert_ne!(event["type"], "error", "the event channel refused: {event}");
    (event["type"] == "queue").then(|| {
        event["ringing"]
            .as_array()
            .is_some_and(|r| r.iter().any(|c| c["id"] == id))
    })
}

/// The next workbench message for which `wanted` holds (on `rings_in_queue`'s answer);
/// when it arrived.
async fn next_queue(
    events: &mut mpsc::UnboundedReceiver<(Instant, Value)>,
    id: &str,
    wanted: bool,
    what: &str,
) -> Instant {
    let found = tokio::time::timeout(RING_WAIT, async {
        while let Some((at, event)) = events.recv().await {
            if rings_in_queue(&event, id) == Some(wanted) {
                return at;
            }
        }
        panic!("the event channel closed while waiting for {what} of {id}");
    })
    .await;
    found.unwrap_or_else(|_| panic!("no {what} of request {id} within {RING_WAIT:?}"))
}

/// One customer request on `customer_node`: milliseconds until `events` (the
/// workbench's channel) shows its ring; then the customer cancels it and the ring is
/// seen gone, so the agent is free for the next.
async fn ring_once(
    events: &mut mpsc::UnboundedReceiver<(Instant, Value)>,
    customer_node: &TestServer,
) -> f64 {
    // What came before concerns earlier requests only (matching by id ignores it
    // anyway).
    while events.try_recv().is_ok() {}
    let started = Instant::now();
    // Dispatch runs inside the request, so the ring may arrive before its answer: the
    // reader stamps each message as it comes.
    let (id, room_token) = service_request(customer_node, "video").await;
    let rung = next_queue(events, &id, true, "the ring").await;
    let ms = rung.duration_since(started).as_secs_f64() * 1000.0;
    // The customer cancels (the service page's button); the agent is free again once
    // the workbench no longer shows the ring.
    let (status, view) = customer_node
        .post(
            &format!("/api/v1/service/requests/{id}/cancel"),
            Some(&room_token),
            None,
        )
        .await;
    assert_eq!(status, 200, "cancel {id}: {view}");
    assert_eq!(view["state"], "cancelled", "cancel {id}: {view}");
    next_queue(events, &id, false, "the end of the ring").await;
    ms
}

/// Milliseconds from each customer request on `customer_node` to its ring on the
/// workbench event channel of agent alice on `agent_node` (after [`joins`] made the
/// enterprise and alice).
async fn rings(agent_node: &TestServer, customer_node: &TestServer, calls: usize) -> Vec<f64> {
    let alice = agent_node.login("alice", PASSWORD).await;
    reception_group(agent_node, &[("alice", &alice)]).await;
    let (mut events, reader) = workbench_events(agent_node, &alice).await;
    // Unmeasured: the first request of a node runs its paths cold (~40 ms against
    // 5-10 ms after), which would be every setup's p99.
    ring_once(&mut events, customer_node).await;
    let mut times = Vec::new();
    for i in 0..calls {
        // Meet the one-second sweep at every phase (as tests/e2e/ring-latency.mjs).
        let pause = 137 * u64::try_from(i % 8).expect("under 8");
        tokio::time::sleep(Duration::from_millis(pause)).await;
        times.push(ring_once(&mut events, customer_node).await);
    }
    reader.abort();
    times
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

/// Prints `name: N <items>, <what> p50 …, p99 …`; returns (p50, p99).
fn report(name: &str, items: &str, what: &str, mut times: Vec<f64>) -> (f64, f64) {
    times.sort_by(f64::total_cmp);
    let (p50, p99) = (percentile(&times, 0.5), percentile(&times, 0.99));
    println!(
        "{name}: {} {items}, {what} p50 {p50:.0} ms, p99 {p99:.0} ms",
        times.len()
    );
    (p50, p99)
}

/// The cluster's figures against one node's: differences and ratios.
fn overhead(label: &str, one: (f64, f64), cluster: (f64, f64)) {
    println!(
        "{label}: p50 {:+.0} ms ({:.2}×), p99 {:+.0} ms ({:.2}×)",
        cluster.0 - one.0,
        cluster.0 / one.0,
        cluster.1 - one.1,
        cluster.1 / one.1
    );
}

const JOIN: &str = "accept → both media connected";
const RING: &str = "request → ring on the workbench event channel";

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let args = Args::parse();
    // Every call accepts an invite (and every request is made) from this one address:
    // lift the per-address limit.
    let single = spawn_app_with(|c| c.auth.login_attempts_per_minute = ATTEMPTS).await;
    let one_node = "one node (role all, in process)";
    let one = report(
        one_node,
        "calls",
        JOIN,
        joins(&single, &single, args.calls).await,
    );
    let one_ring = report(
        one_node,
        "requests",
        RING,
        rings(&single, &single, args.calls).await,
    );
    drop(single);

    let engines =
        engines().expect("TEST_REDIS_URL, TEST_POSTGRES_URL, TEST_S3_* (make bench-join)");
    let nodes = start_cluster(&engines, |c| c.auth.login_attempts_per_minute = ATTEMPTS).await;
    let cluster = report(
        "cluster (2 signaling + 2 media nodes, Redis; agent and customer on different signaling nodes)",
        "calls",
        JOIN,
        joins(&nodes.signaling[0], &nodes.signaling[1], args.calls).await,
    );
    let cluster_ring = report(
        "cluster (2 signaling + 2 media nodes, Redis; request on signaling node 2, workbench on node 1)",
        "requests",
        RING,
        rings(&nodes.signaling[0], &nodes.signaling[1], args.calls).await,
    );
    overhead("Redis path overhead", one, cluster);
    overhead(
        "Redis path overhead, request → ring",
        one_ring,
        cluster_ring,
    );
    drop(nodes);
}
