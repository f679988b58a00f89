//! A kefu node on the engines a cluster shares: state in Redis, data in PostgreSQL,
//! recordings in an external S3 server (Ceph radosgw). `make test` starts all three
//! (deploy/with-redis.sh, with-postgres.sh, with-radosgw.sh); under CI they are
//! required. Two webrtc-rs clients make a recorded call through it.

use std::time::Duration;

use kefu_signaling::cluster::config::ClusterBackend;
use kefu_signaling::cluster::redis::{RedisCluster, RedisNodes};
use kefu_tests::cluster::{Engines, OwnRedis, cluster_node, engines, fresh_database, fresh_prefix};
use kefu_tests::scenario::{connected_call, enterprise_with_agent, verify};
use kefu_tests::{TestServer, spawn_app_with, wait_until};
use redis::AsyncCommands;

async fn redis_handle(engines: &Engines, prefix: &str) -> RedisCluster {
    let mut config = kefu_signaling::cluster::config::ClusterConfig {
        backend: ClusterBackend::Redis,
        redis_url: Some(engines.redis.clone().into()),
        key_prefix: prefix.to_owned(),
        node_id: "observer".into(),
        ..Default::default()
    };
    config.redis_timeout_ms = 1000;
    RedisCluster::connect(&config).await.expect("redis")
}

async fn raw_redis(engines: &Engines) -> redis::aio::MultiplexedConnection {
    redis::Client::open(engines.redis.as_str())
        .expect("client")
        .get_multiplexed_async_connection()
        .await
        .expect("connection")
}

async fn node(engines: &Engines) -> (TestServer, String) {
    let prefix = fresh_prefix();
    let database = fresh_database(&engines.postgres).await;
    let server = spawn_app_with(|c| cluster_node(c, engines, &database, &prefix, "node-a")).await;
    (server, prefix)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_on_redis_postgres_and_s3_runs_a_recorded_call_through_shared_state() {
    let Some(engines) = engines() else { return };
    let (server, prefix) = node(&engines).await;
    let observer = redis_handle(&engines, &prefix).await;

    // The node registered itself, with its load.
    let nodes = RedisNodes::new(observer.clone(), Duration::from_secs(1));
    let me = wait_until(
        "the node in the registry",
        Duration::from_secs(5),
        || async {
            nodes
                .view()
                .await
                .expect("view")
                .live
                .into_iter()
                .find(|(n, _)| n.id == "node-a")
        },
    )
    .await;
    assert_eq!((me.0.role.as_str(), me.0.draining), ("all", false));
    assert!(me.0.load.cores >= 1);

    let (alice, boss) = enterprise_with_agent(&server).await;
    verify(&server, "alice", true).await;
    let (call, agent, customer) = connected_call(&server, &alice).await;
    // The call's room lives in Redis while the call does.
    let mut raw = raw_redis(&engines).await;
    let room_key = observer.key(&["room", &call]);
    let members: Vec<String> = raw.hkeys(&room_key).await.expect("HKEYS");
    assert!(
        members.iter().filter(|f| f.starts_with("m:")).count() == 2,
        "both members in Redis: {members:?}"
    );
    wait_until(
        "the node to count its call",
        Duration::from_secs(5),
        || async {
            let view = nodes.view().await.expect("view");
            view.live
                .iter()
                .any(|(n, _)| n.id == "node-a" && n.load.calls == 1)
                .then_some(())
        },
    )
    .await;
    for client in [&agent, &customer] {
        client.wait_for_more(60, 40, Duration::from_secs(10)).await;
    }
    customer.hang_up();
    server
        .wait_for_call_state(&call, &alice, "ended", Duration::from_secs(10))
        .await;
    // The end is stored first, then its reactions close the room: a moment later.
    wait_until(
        "the room to leave Redis with the call",
        Duration::from_secs(5),
        || {
            let mut raw = raw.clone();
            let room_key = room_key.clone();
            async move {
                let exists: bool = raw.exists(&room_key).await.expect("EXISTS");
                (!exists).then_some(())
            }
        },
    )
    .await;

    // The recording reaches the external S3 server; its play link lives in Redis and
    // opens the bytes.
    let recording = wait_until(
        "the recording to be ready",
        Duration::from_secs(60),
        || async {
            let list = server.recordings_of(&call, &boss).await;
            let first = list[0].clone();
            (first["state"] == "ready").then_some(first)
        },
    )
    .await;
    let id = recording["id"].as_str().expect("id");
    let (status, link) = server
        .post(&format!("/api/v1/recordings/{id}/play"), Some(&boss), None)
        .await;
    assert_eq!(status, 200, "{link}");
    let links: Vec<String> = redis::cmd("KEYS")
        .arg(observer.key(&["link", "*"]))
        .query_async(&mut raw)
        .await
        .expect("KEYS");
    assert_eq!(links.len(), 1, "the link is in Redis: {links:?}");
    let url = format!("{}{}", server.base_url, link["url"].as_str().expect("url"));
    let bytes = reqwest::get(&url)
        .await
        .expect("GET")
        .bytes()
        .await
        .expect("body");
    assert!(
        bytes.len() > 10_000,
        "the recording's bytes: {}",
        bytes.len()
    );
    assert_eq!(&bytes[4..8], b"ftyp", "an MP4 file");

    server.stop().await.expect("stops");
    let view = nodes.view().await.expect("view");
    assert!(
        view.live.iter().all(|(n, _)| n.id != "node-a") && view.silent.is_empty(),
        "a stopped node leaves the registry (it is gone, not lost): {view:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn while_redis_is_stopped_a_live_call_keeps_its_media_and_new_requests_are_refused_clearly() {
    let Some(mut engines) = engines() else { return };
    let mut redis = OwnRedis::start();
    engines.redis = redis.url();
    let (server, _) = node(&engines).await;
    let (alice, _boss) = enterprise_with_agent(&server).await;
    verify(&server, "alice", true).await;
    let (call, agent, customer) = connected_call(&server, &alice).await;

    redis.stop();
    let login = || server.try_login("alice");
    let (status, body) = login().await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(
        body["error"], "cluster_unavailable",
        "a clear, translatable refusal: {body}"
    );
    // Ten seconds without Redis: media keeps flowing both ways.
    for client in [&agent, &customer] {
        client
            .wait_for_more(150, 100, Duration::from_secs(12))
            .await;
    }
    let (status, _) = login().await;
    assert_eq!(status, 503, "still refused while Redis is away");

    redis.spawn();
    // Back without a restart of kefu: requests work again and the call ends normally.
    wait_until("sign-in to work again", Duration::from_secs(10), || async {
        (login().await.0 == 200).then_some(())
    })
    .await;
    customer.hang_up();
    server
        .wait_for_call_state(&call, &alice, "ended", Duration::from_secs(10))
        .await;
    server.stop().await.expect("stops");
}
