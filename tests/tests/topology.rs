//! Two signaling nodes (in this process) and two media nodes (`kefu serve --role
//! media` processes) of one cluster, sharing Redis, PostgreSQL and Ceph radosgw as
//! `make test` starts them, with webrtc-rs clients: a call whose agent and customer reach different
//! signaling nodes, calls spread over the media nodes, a drain.

use std::time::Duration;

use kefu_tests::cluster::{Cluster, engines, start_cluster};
use kefu_tests::scenario::{accept_invite, accepted_invite, enterprise_with_agent, invite, verify};
use kefu_tests::{RtcClient, wait_until};

/// How long a lost signaling connection keeps its place (short, so tests see past it;
/// the media nodes' is the same, tests/src/cluster.rs).
const GRACE_SECS: u64 = 3;

async fn cluster() -> Option<Cluster> {
    let engines = engines()?;
    Some(start_cluster(&engines, |c| c.signaling.reconnect_grace_secs = GRACE_SECS).await)
}

/// Participants each media node's SFU holds now.
async fn held(cluster: &Cluster) -> Vec<f64> {
    let mut held = Vec::new();
    for node in &cluster.media {
        held.push(node.metric("kefu_sfu_participants").await);
    }
    held
}

/// An invited video call of `agent`, its agent on signaling node `a`, its customer
/// on signaling node `c`; returns (call id, agent client, customer client).
async fn call_across(
    cluster: &Cluster,
    agent: &str,
    a: usize,
    c: usize,
) -> (String, RtcClient, RtcClient) {
    let (id, agent_token, customer_token) =
        accepted_invite(&cluster.signaling[a], agent, "video").await;
    let agent = RtcClient::join_with_token(&cluster.signaling[a], &agent_token, "agent").await;
    let customer =
        RtcClient::join_with_token(&cluster.signaling[c], &customer_token, "customer").await;
    customer
        .wait_for_more(20, 20, Duration::from_secs(15))
        .await;
    (id, agent, customer)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_across_signaling_nodes_runs_on_one_media_node_and_calls_spread() {
    let Some(cluster) = cluster().await else {
        return;
    };
    let (sig1, sig2) = (&cluster.signaling[0], &cluster.signaling[1]);
    let (alice, boss) = enterprise_with_agent(sig1).await;
    verify(sig1, "alice", true).await;

    // The agent signals through node 1, the customer through node 2.
    let (first, agent, customer) = call_across(&cluster, &alice, 0, 1).await;
    for client in [&agent, &customer] {
        client.wait_for_more(60, 40, Duration::from_secs(10)).await;
    }
    let placed = held(&cluster).await;
    assert!(
        placed == [2.0, 0.0] || placed == [0.0, 2.0],
        "both parties on one media node: {placed:?}"
    );
    sig2.wait_for_call_state(&first, &boss, "connected", Duration::from_secs(5))
        .await;

    // A second call while the first runs goes to the other media node.
    let (second, agent2, customer2) = call_across(&cluster, &alice, 1, 0).await;
    customer2
        .wait_for_more(30, 20, Duration::from_secs(10))
        .await;
    assert_eq!(
        held(&cluster).await,
        [2.0, 2.0],
        "one call on each media node"
    );

    for (call, customer) in [(&first, &customer), (&second, &customer2)] {
        customer.hang_up();
        sig1.wait_for_call_state(call, &alice, "ended", Duration::from_secs(10))
            .await;
    }
    drop((agent, agent2));
    // Both recordings reach the shared store; one plays through the other signaling
    // node than the one that made its link.
    for call in [&first, &second] {
        let recording = wait_until(
            "a recording to be ready",
            Duration::from_secs(60),
            || async {
                let list = sig2.recordings_of(call, &boss).await;
                (list[0]["state"] == "ready").then(|| list[0].clone())
            },
        )
        .await;
        let id = recording["id"].as_str().expect("id");
        let (status, link) = sig2
            .post(&format!("/api/v1/recordings/{id}/play"), Some(&boss), None)
            .await;
        assert_eq!(status, 200, "{link}");
        let url = format!("{}{}", sig1.base_url, link["url"].as_str().expect("url"));
        let bytes = reqwest::get(&url)
            .await
            .expect("GET")
            .bytes()
            .await
            .expect("body");
        assert_eq!(&bytes[4..8], b"ftyp", "an MP4 file through the other node");
    }
    wait_until(
        "the media nodes to let go",
        Duration::from_secs(10),
        || async { (held(&cluster).await == [0.0, 0.0]).then_some(()) },
    )
    .await;
}

/// Which media node holds a call (participants on it).
async fn holder(cluster: &Cluster) -> usize {
    let held = held(cluster).await;
    held.iter()
        .position(|p| *p >= 2.0)
        .unwrap_or_else(|| panic!("no media node holds the call: {held:?}"))
}

/// Whether `client` was told its call ended for `reason`.
async fn told_ended(client: &RtcClient, reason: kefu_proto::EndReason) -> bool {
    client.messages.lock().await.iter().any(|m| {
        matches!(m, kefu_proto::signaling::ServerMessage::CallEnded { reason: r, .. } if *r == reason)
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_drained_media_node_finishes_its_call_takes_no_new_one_and_exits() {
    let Some(mut cluster) = cluster().await else {
        return;
    };
    let sig1 = &cluster.signaling[0];
    let (alice, boss) = enterprise_with_agent(sig1).await;
    verify(sig1, "alice", true).await;
    let (first, agent, customer) = call_across(&cluster, &alice, 0, 1).await;
    let drained = holder(&cluster).await;

    let id = cluster.media[drained].id.clone();
    let out = cluster.media[drained].admin(&["drain", &id]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    wait_until(
        "the registry to say draining",
        Duration::from_secs(5),
        || async {
            let out = cluster.media[drained].admin(&["nodes"]);
            let listing = String::from_utf8_lossy(&out.stdout).into_owned();
            listing
                .lines()
                .any(|l| l.starts_with(&format!("{id}\t")) && l.contains("draining"))
                .then_some(())
        },
    )
    .await;

    // The live call goes on; a new one goes to the other node.
    customer
        .wait_for_more(60, 40, Duration::from_secs(10))
        .await;
    let (second, _agent2, customer2) = call_across(&cluster, &alice, 1, 0).await;
    let held_now = held(&cluster).await;
    assert_eq!(
        held_now[drained], 2.0,
        "the drained node kept only its own call"
    );
    assert_eq!(
        held_now[1 - drained],
        2.0,
        "the new call went to the other node"
    );

    customer.hang_up();
    let ended = cluster.signaling[0]
        .wait_for_call_state(&first, &alice, "ended", Duration::from_secs(10))
        .await;
    assert_eq!(
        ended["end_reason"], "hang_up",
        "it finished normally: {ended}"
    );
    let status = cluster.media[drained].exited(Duration::from_secs(30)).await;
    assert!(
        status.success(),
        "the drained node stopped by itself: {status}"
    );
    // Its drain touched no other node's call.
    let other = cluster.signaling[1].call_view(&second, &alice).await;
    assert_eq!(other["state"], "connected", "{other}");
    customer2
        .wait_for_more(30, 20, Duration::from_secs(10))
        .await;
    let list = wait_until(
        "the drained call's recording",
        Duration::from_secs(30),
        || async {
            let list = cluster.signaling[1].recordings_of(&first, &boss).await;
            (list[0]["state"] == "ready").then_some(list)
        },
    )
    .await;
    assert_eq!(list.as_array().map(Vec::len), Some(1));
    drop(agent);
    customer2.hang_up();
    let ended = cluster.signaling[0]
        .wait_for_call_state(&second, &alice, "ended", Duration::from_secs(10))
        .await;
    assert_eq!(ended["end_reason"], "hang_up", "{ended}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_media_node_ends_its_calls_as_node_lost_and_recovers_their_recording_when_back() {
    use kefu_proto::EndReason;
    let Some(mut cluster) = cluster().await else {
        return;
    };
    let sig1 = &cluster.signaling[0];
    let (alice, boss) = enterprise_with_agent(sig1).await;
    verify(sig1, "alice", true).await;
    let (lost, lost_agent, lost_customer) = call_across(&cluster, &alice, 0, 1).await;
    let dead = holder(&cluster).await;
    let (kept, _kept_agent, kept_customer) = call_across(&cluster, &alice, 1, 0).await;
    assert_eq!(held(&cluster).await, [2.0, 2.0]);
    // A few seconds in the recording.
    lost_customer
        .wait_for_more(60, 40, Duration::from_secs(10))
        .await;

    cluster.media[dead].kill();
    let killed_at = std::time::Instant::now();
    let ended = cluster.signaling[0]
        .wait_for_call_state(&lost, &alice, "ended", Duration::from_secs(10))
        .await;
    let took = killed_at.elapsed();
    assert_eq!(ended["end_reason"], "node_lost", "{ended}");
    // The entry expires within 1 s, then stays missing for the rejoin time (0.2 s +
    // 2 × the 1 s Redis deadline), read every 0.2 s: about 3.0–3.6 s.
    assert!(
        took < Duration::from_secs(6),
        "ended {took:?} after the kill"
    );
    for (who, client) in [("agent", &lost_agent), ("customer", &lost_customer)] {
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while !told_ended(client, EndReason::NodeLost).await {
            assert!(
                std::time::Instant::now() < deadline,
                "the {who} was not told node_lost: {:?}",
                client.messages.lock().await
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    // The other node's call goes on.
    kept_customer
        .wait_for_more(60, 40, Duration::from_secs(10))
        .await;
    let view = cluster.signaling[1].call_view(&kept, &alice).await;
    assert_eq!(view["state"], "connected", "{view}");
    let list = cluster.signaling[1].recordings_of(&lost, &boss).await;
    assert_ne!(
        list[0]["state"], "ready",
        "its recording waits on the dead node's spool"
    );

    // Back on the same disk: the recording is recovered from the spool.
    cluster.media[dead].start().await;
    let recording = wait_until(
        "the lost call's recording",
        Duration::from_secs(60),
        || async {
            let list = cluster.signaling[1].recordings_of(&lost, &boss).await;
            (list[0]["state"] == "ready").then(|| list[0].clone())
        },
    )
    .await;
    assert!(
        recording["duration_ms"].as_i64().unwrap_or(0) >= 2000,
        "what was spooled before the kill: {recording}"
    );
    kept_customer.hang_up();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_made_on_one_signaling_node_reaches_a_workbench_on_the_other() {
    use kefu_tests::signaling::EventChannel;
    let Some(cluster) = cluster().await else {
        return;
    };
    let (sig1, sig2) = (&cluster.signaling[0], &cluster.signaling[1]);
    let (alice, _boss) = enterprise_with_agent(sig1).await;
    verify(sig1, "alice", true).await;

    // The workbench's event channel is on node 1.
    let mut events = EventChannel::subscribe(&sig1.ws_url, &alice).await;

    // The call is created on node 1, its invite accepted on node 2.
    let (id, code) = invite(sig1, &alice, "video").await;
    accept_invite(sig2, &code).await;
    let seen = events
        .next_where(Duration::from_secs(5), |event| {
            event["type"] == "call"
                && event["call"]["id"] == id.as_str()
                && event["call"]["state"] == "connecting"
        })
        .await
        .expect("the accept on node 2 reached the workbench on node 1 within 5 s");
    assert_eq!(seen["call"]["state"], "connecting");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_page_whose_signaling_moves_to_the_other_node_resumes_its_call() {
    let Some(cluster) = cluster().await else {
        return;
    };
    let sig1 = &cluster.signaling[0];
    let (alice, _boss) = enterprise_with_agent(sig1).await;
    verify(sig1, "alice", true).await;
    let (id, agent_token, customer_token) = accepted_invite(sig1, &alice, "video").await;
    let agent = RtcClient::join_with_token(&cluster.signaling[0], &agent_token, "agent").await;
    // The customer's page signals through node 2, then loses it and comes back
    // through node 1 (a load balancer sent the new connection there).
    let mut customer =
        RtcClient::join_with_token(&cluster.signaling[1], &customer_token, "customer").await;
    customer
        .wait_for_more(30, 20, Duration::from_secs(15))
        .await;
    customer.lose_signaling();
    customer
        .reconnect(&cluster.signaling[0], &customer_token)
        .await;
    wait_until(
        "the ICE restart's answer through node 1",
        Duration::from_secs(10),
        || async {
            let messages = customer.messages.lock().await;
            let answers = messages
                .iter()
                .filter(|m| matches!(m, kefu_proto::signaling::ServerMessage::Answer { .. }))
                .count();
            (answers == 2).then_some(())
        },
    )
    .await;
    // Media goes on both ways, on the same media node, past the grace period of the
    // lost connection (which must not hang the call up).
    let grace = Duration::from_secs(GRACE_SECS);
    tokio::time::sleep(grace + Duration::from_secs(1)).await;
    customer
        .wait_for_more(50, 30, Duration::from_secs(10))
        .await;
    agent.wait_for_more(50, 30, Duration::from_secs(10)).await;
    let view = cluster.signaling[1].call_view(&id, &alice).await;
    assert_eq!(view["state"], "connected", "{view}");
    assert_eq!(
        held(&cluster).await.iter().sum::<f64>(),
        2.0,
        "still one call's two participants"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopping_signaling_node_hands_its_pages_over_and_their_call_goes_on() {
    let Some(mut cluster) = cluster().await else {
        return;
    };
    let sig1 = &cluster.signaling[0];
    let (alice, _boss) = enterprise_with_agent(sig1).await;
    verify(sig1, "alice", true).await;
    let (id, agent_token, customer_token) = accepted_invite(sig1, &alice, "video").await;
    let agent = RtcClient::join_with_token(sig1, &agent_token, "agent").await;
    let mut customer =
        RtcClient::join_with_token(&cluster.signaling[1], &customer_token, "customer").await;
    customer
        .wait_for_more(20, 20, Duration::from_secs(15))
        .await;
    // A rolling upgrade stops signaling node 2 (SIGTERM: a graceful stop).
    let stopping = cluster.signaling.remove(1);
    stopping.stop().await.expect("node 2 stops cleanly");
    assert_eq!(
        *customer.close_codes.lock().await,
        vec![1012],
        "node 2 told the page to come back elsewhere (1012), not that the call is over"
    );
    // The page comes back through node 1, as a load balancer sends it there.
    customer
        .reconnect(&cluster.signaling[0], &customer_token)
        .await;
    // Media goes on past the media node's grace for the dropped control connection.
    tokio::time::sleep(Duration::from_secs(GRACE_SECS + 1)).await;
    customer
        .wait_for_more(50, 30, Duration::from_secs(10))
        .await;
    agent.wait_for_more(50, 30, Duration::from_secs(10)).await;
    let view = cluster.signaling[0].call_view(&id, &alice).await;
    assert_eq!(view["state"], "connected", "{view}");
    assert!(
        !customer
            .messages
            .lock()
            .await
            .iter()
            .any(|m| matches!(m, kefu_proto::signaling::ServerMessage::CallEnded { .. })),
        "nobody was told the call ended"
    );
    assert_eq!(
        held(&cluster).await.iter().sum::<f64>(),
        2.0,
        "still one call's two participants"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_page_that_does_not_come_back_after_its_signaling_node_stopped_is_hung_up() {
    let Some(mut cluster) = cluster().await else {
        return;
    };
    let sig1 = &cluster.signaling[0];
    let (alice, _boss) = enterprise_with_agent(sig1).await;
    verify(sig1, "alice", true).await;
    let (id, agent, _customer) = call_across(&cluster, &alice, 0, 1).await;
    let stopping = cluster.signaling.remove(1);
    let stopped_at = std::time::Instant::now();
    stopping.stop().await.expect("node 2 stops cleanly");
    // The customer's page never reconnects: the media node's grace runs out.
    wait_until(
        "the agent told the call ended as network_lost",
        Duration::from_secs(GRACE_SECS + 10),
        || async {
            told_ended(&agent, kefu_proto::EndReason::NetworkLost)
                .await
                .then_some(())
        },
    )
    .await;
    assert!(
        stopped_at.elapsed() >= Duration::from_secs(GRACE_SECS),
        "not before the grace: {:?}",
        stopped_at.elapsed()
    );
    let view = cluster.signaling[0].call_view(&id, &alice).await;
    assert_eq!(
        (&view["state"], &view["end_reason"]),
        (
            &serde_json::json!("ended"),
            &serde_json::json!("network_lost")
        ),
        "{view}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_stopped_during_a_call_across_nodes_keeps_its_media_and_loses_no_node() {
    let Some(mut engines) = engines() else { return };
    let mut redis = kefu_tests::cluster::OwnRedis::start();
    engines.redis = redis.url();
    let cluster = start_cluster(&engines, |c| c.signaling.reconnect_grace_secs = GRACE_SECS).await;
    let sig1 = &cluster.signaling[0];
    let (alice, _boss) = enterprise_with_agent(sig1).await;
    verify(sig1, "alice", true).await;
    let (call, agent, customer) = call_across(&cluster, &alice, 0, 1).await;

    redis.stop();
    let login = || sig1.try_login("alice");
    let (status, body) = login().await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["error"], "cluster_unavailable", "{body}");
    // Ten seconds without Redis (every registry entry expires meanwhile).
    for client in [&agent, &customer] {
        client
            .wait_for_more(150, 100, Duration::from_secs(12))
            .await;
    }

    redis.spawn();
    wait_until("sign-in to work again", Duration::from_secs(10), || async {
        (login().await.0 == 200).then_some(())
    })
    .await;
    // The heartbeats come back before any node is judged: nobody is lost (past the
    // rejoin time, 2.2 s, in which a silent node would be judged).
    tokio::time::sleep(Duration::from_secs(4)).await;
    for node in &cluster.signaling {
        let judged = node.metric("kefu_cluster_nodes_lost_total").await;
        assert_eq!(judged, 0.0, "a live node was judged lost");
    }
    let view = cluster.signaling[1].call_view(&call, &alice).await;
    assert_eq!(
        view["state"], "connected",
        "the call survived the outage: {view}"
    );
    customer
        .wait_for_more(50, 30, Duration::from_secs(10))
        .await;
    customer.hang_up();
    let ended = sig1
        .wait_for_call_state(&call, &alice, "ended", Duration::from_secs(10))
        .await;
    assert_eq!(ended["end_reason"], "hang_up", "{ended}");
    drop(agent);
}
