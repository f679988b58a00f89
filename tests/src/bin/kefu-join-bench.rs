//! Join latency, one node against a cluster, side by side in one run: from the
//! customer accepting an invite to both parties' media being connected (webrtc-rs
//! clients), for `--calls` calls one after another. The cluster is two signaling nodes
//! in this process and two `kefu serve --role media` processes on Redis, PostgreSQL
//! and Ceph radosgw (run under deploy/with-redis.sh, with-postgres.sh and
//! with-radosgw.sh: `make bench-join`).

use std::time::{Duration, Instant};

use clap::Parser;
use kefu_proto::signaling::ServerMessage;
use kefu_tests::cluster::{engines, start_cluster};
use kefu_tests::scenario::{accepted_invite, enterprise_with_agent, verify};
use kefu_tests::{RtcClient, TestServer, spawn_app_with};

/// Attempts per minute per address on the benchmark's nodes (all its calls come from
/// one address).
const ATTEMPTS: u32 = 10_000;

#[derive(Parser, Debug)]
struct Args {
    /// Calls per setup.
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

fn percentile(sorted: &[f64], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn report(name: &str, mut times: Vec<f64>) -> (f64, f64) {
    times.sort_by(f64::total_cmp);
    let (p50, p99) = (percentile(&times, 0.5), percentile(&times, 0.99));
    println!(
        "{name}: {} calls, accept → both media connected p50 {p50:.0} ms, p99 {p99:.0} ms",
        times.len()
    );
    (p50, p99)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let args = Args::parse();
    // Every call accepts an invite from this one address: lift the per-address limit.
    let single = spawn_app_with(|c| c.auth.login_attempts_per_minute = ATTEMPTS).await;
    let one = report(
        "one node (role all, in process)",
        joins(&single, &single, args.calls).await,
    );
    drop(single);

    let engines =
        engines().expect("TEST_REDIS_URL, TEST_POSTGRES_URL, TEST_S3_* (make bench-join)");
    let nodes = start_cluster(&engines, |c| c.auth.login_attempts_per_minute = ATTEMPTS).await;
    let cluster = report(
        "cluster (2 signaling + 2 media nodes, Redis; agent and customer on different signaling nodes)",
        joins(&nodes.signaling[0], &nodes.signaling[1], args.calls).await,
    );
    println!(
        "Redis path overhead: p50 {:+.0} ms ({:.2}×), p99 {:+.0} ms ({:.2}×)",
        cluster.0 - one.0,
        cluster.0 / one.0,
        cluster.1 - one.1,
        cluster.1 / one.1
    );
    drop(nodes);
}
