//! The Redis implementations of the cluster seams against a real Redis server
//! (`make test` runs one: deploy/with-redis.sh sets TEST_REDIS_URL). Two handles on
//! one Redis stand for two nodes. Each test uses its own key prefix.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use kefu_beauty::Preset;
use kefu_proto::Side;
use kefu_proto::signaling::{ErrorCode, PeerInfo, ServerMessage};
use kefu_signaling::beauty::preview::{PreviewStore, Tried};
use kefu_signaling::cluster::ClusterError;
use kefu_signaling::cluster::bus::{RoomBus, RoomCounts, RoomError};
use kefu_signaling::cluster::config::{ClusterBackend, ClusterConfig};
use kefu_signaling::cluster::lease::Lease;
use kefu_signaling::cluster::limiter::AttemptLimiter;
use kefu_signaling::cluster::links::LinkStore;
use kefu_signaling::cluster::nodes::{NodeInfo, NodeLoad};
use kefu_signaling::cluster::redis::{
    RedisCluster, RedisLease, RedisLimiter, RedisLinks, RedisNodes, RedisPreviews, RedisRooms,
};

/// The Redis `make test` started, or none (then the test says so and passes only
/// outside CI, where the suite must run against Redis).
fn redis_url() -> Option<String> {
    match std::env::var("TEST_REDIS_URL") {
        Ok(url) => Some(url),
        Err(_) if std::env::var_os("CI").is_some() => {
            panic!("CI must run the Redis tests: set TEST_REDIS_URL (make test does)")
        }
        Err(_) => {
            eprintln!("TEST_REDIS_URL unset: Redis tests skipped");
            None
        }
    }
}

fn config(url: &str, prefix: &str, node: &str) -> ClusterConfig {
    ClusterConfig {
        backend: ClusterBackend::Redis,
        redis_url: Some(url.into()),
        key_prefix: prefix.into(),
        node_id: node.into(),
        redis_timeout_ms: 500,
        secret: Some("the cluster secret of the tests, 32+ bytes".into()),
        ..ClusterConfig::default()
    }
}

/// Two nodes' handles on one Redis, under a fresh prefix.
async fn two_nodes(url: &str) -> (RedisCluster, RedisCluster) {
    let prefix = format!("test-{}", uuid::Uuid::new_v4().simple());
    let a = RedisCluster::connect(&config(url, &prefix, "node-a"))
        .await
        .expect("connect a");
    let b = RedisCluster::connect(&config(url, &prefix, "node-b"))
        .await
        .expect("connect b");
    (a, b)
}

/// Every key under the handle's prefix.
async fn keys(redis_url: &str, node: &RedisCluster) -> Vec<String> {
    let client = redis::Client::open(redis_url).expect("client");
    let mut conn = client
        .get_multiplexed_async_connection()
        .await
        .expect("connection");
    redis::cmd("KEYS")
        .arg(format!("{}:*", node.key(&[])))
        .query_async(&mut conn)
        .await
        .expect("KEYS")
}

#[tokio::test]
async fn a_link_made_on_one_node_opens_on_another_until_it_expires() {
    let Some(url) = redis_url() else { return };
    let (a, b) = two_nodes(&url).await;
    let (on_a, on_b) = (RedisLinks::new(a.clone()), RedisLinks::new(b));
    on_a.put(
        "secret-token-1",
        "inline:rec-1".into(),
        Duration::from_millis(400),
    )
    .await
    .expect("put");
    assert_eq!(
        on_b.get("secret-token-1").await.expect("get").as_deref(),
        Some("inline:rec-1")
    );
    assert_eq!(on_b.get("other-token").await.expect("get"), None);
    let stored = keys(&url, &a).await;
    assert_eq!(stored.len(), 1, "{stored:?}");
    assert!(
        !stored[0].contains("secret-token-1"),
        "the token itself is not a key: {stored:?}"
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        on_b.get("secret-token-1").await.expect("get"),
        None,
        "expired"
    );
}

#[tokio::test]
async fn a_lease_has_one_holder_across_nodes_and_outlives_its_ttl_while_held() {
    let Some(url) = redis_url() else { return };
    let (a, b) = two_nodes(&url).await;
    let ttl = Duration::from_millis(300);
    let on_a = RedisLease::new(a.clone(), ttl, Duration::from_secs(5));
    let on_b = RedisLease::new(b.clone(), ttl, Duration::from_millis(200));

    let held = on_a.acquire("dispatch").await.expect("free");
    // Held past three lifetimes: renewal keeps it.
    tokio::time::sleep(ttl * 3).await;
    let refused = on_b.acquire("dispatch").await;
    assert!(
        matches!(refused, Err(ClusterError::Unavailable(_))),
        "node b gives up while a holds it: {refused:?}"
    );
    let _other = on_b.acquire("another").await.expect("other names are free");

    drop(held);
    // Released when dropped, not left to expire: this one lives 10 s unreleased.
    let long = RedisLease::new(a.clone(), Duration::from_secs(10), Duration::from_secs(5));
    drop(long.acquire("release-check").await.expect("free"));
    let key = a.key(&["lease", "release-check"]);
    let client = redis::Client::open(url.as_str()).expect("client");
    let mut conn = client
        .get_multiplexed_async_connection()
        .await
        .expect("connection");
    let started = Instant::now();
    loop {
        let exists: bool = redis::cmd("EXISTS")
            .arg(&key)
            .query_async(&mut conn)
            .await
            .expect("EXISTS");
        if !exists {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "the dropped lease was released"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let waiting = RedisLease::new(b, ttl, Duration::from_millis(200));
    waiting
        .acquire("dispatch")
        .await
        .expect("free for the next holder");
}

#[tokio::test]
async fn a_lease_left_by_a_dead_holder_frees_itself_after_its_ttl() {
    let Some(url) = redis_url() else { return };
    let (a, _) = two_nodes(&url).await;
    // A holder that died: its token sits there with no renewal.
    let client = redis::Client::open(url.as_str()).expect("client");
    let mut conn = client
        .get_multiplexed_async_connection()
        .await
        .expect("connection");
    let _: () = redis::cmd("SET")
        .arg(a.key(&["lease", "dispatch"]))
        .arg("dead-node-token")
        .arg("PX")
        .arg(300)
        .query_async(&mut conn)
        .await
        .expect("SET");
    let lease = RedisLease::new(a, Duration::from_secs(10), Duration::from_secs(5));
    let started = Instant::now();
    let _held = lease.acquire("dispatch").await.expect("after expiry");
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(200) && waited < Duration::from_secs(2),
        "waited for the dead holder's lease to expire: {waited:?}"
    );
}

#[tokio::test]
async fn attempt_limits_are_shared_by_every_node_and_keys_are_hashed() {
    let Some(url) = redis_url() else { return };
    let (a, b) = two_nodes(&url).await;
    let window = Duration::from_millis(500);
    let on_a = RedisLimiter::new(a.clone(), "attempts", 3, window);
    let on_b = RedisLimiter::new(b, "attempts", 3, window);
    assert!(on_a.allow("login:alice").await.expect("1"));
    assert!(on_b.allow("login:alice").await.expect("2"));
    assert!(on_a.allow("login:alice").await.expect("3"));
    assert!(
        !on_b.allow("login:alice").await.expect("4"),
        "over the limit on any node"
    );
    assert!(on_b.allow("ip:192.0.2.7").await.expect("another key"));
    let stored = keys(&url, &a).await;
    assert!(
        stored
            .iter()
            .all(|k| !k.contains("alice") && !k.contains("192.0.2.7")),
        "names and addresses are not in clear: {stored:?}"
    );
    tokio::time::sleep(window + Duration::from_millis(100)).await;
    assert!(on_a.allow("login:alice").await.expect("new window"));
}

#[tokio::test]
async fn a_preview_opened_on_one_node_is_driven_from_another() {
    let Some(url) = redis_url() else { return };
    let (a, b) = two_nodes(&url).await;
    let (on_a, on_b) = (RedisPreviews::new(a.clone()), RedisPreviews::new(b));
    let natural = Preset::Natural.params();
    let smooth = Preset::Smooth.params();
    assert_eq!(
        on_a.set_params("a1", smooth).await.expect("set"),
        Tried::NoPreview
    );

    let (first, replaced) = on_a.open("a1", natural).await.expect("open");
    assert_eq!(replaced, None);
    let (second, replaced) = on_b.open("a1", natural).await.expect("open again");
    assert_eq!(
        replaced.as_deref(),
        Some(first.as_str()),
        "one preview per agent"
    );
    assert_eq!(
        on_a.went_live(&first, "a1").await.expect("live"),
        None,
        "old room closed"
    );
    assert_eq!(
        on_a.went_live(&second, "a2").await.expect("live"),
        None,
        "not a2's"
    );

    assert_eq!(
        on_a.set_params("a1", smooth).await.expect("set"),
        Tried::Pending
    );
    assert_eq!(
        on_b.went_live(&second, "a1").await.expect("live"),
        Some(smooth),
        "the settings tried before the media came, exactly"
    );
    assert_eq!(
        on_a.set_params("a1", natural).await.expect("set"),
        Tried::Live {
            room: second.clone()
        }
    );
    assert!(on_b.close_room(&second).await.expect("close room"));
    assert!(!on_a.close_room(&second).await.expect("again"));
    assert_eq!(on_a.close("a1").await.expect("close"), None);
    assert_eq!(
        keys(&url, &a).await,
        Vec::<String>::new(),
        "nothing left behind"
    );

    let (third, _) = on_a.open("a1", natural).await.expect("open");
    assert_eq!(
        on_b.close("a1").await.expect("close").as_deref(),
        Some(third.as_str())
    );
    assert_eq!(keys(&url, &a).await, Vec::<String>::new());
}

fn entry(id: &str, calls: u32) -> NodeInfo {
    NodeInfo {
        id: id.into(),
        role: "media".into(),
        internal_url: format!("http://{id}:8081"),
        draining: false,
        load: NodeLoad {
            cpu_cores: 0.1,
            cores: 2,
            calls,
            pipeline_streams: 0,
            screened_streams: 0,
        },
        version: "test".into(),
        seen_ms: 1,
    }
}

#[tokio::test]
async fn the_registry_lists_live_nodes_counts_placements_and_notices_silence() {
    let Some(url) = redis_url() else { return };
    let (a, b) = two_nodes(&url).await;
    let timeout = Duration::from_millis(400);
    let (reg_a, reg_b) = (RedisNodes::new(a, timeout), RedisNodes::new(b, timeout));
    assert!(!reg_a.heartbeat(&entry("m1", 1)).await.expect("beat"));
    assert!(!reg_b.heartbeat(&entry("m2", 0)).await.expect("beat"));
    reg_a.note_placed("m2").await.expect("placed");
    reg_b.note_placed("m2").await.expect("placed");

    let view = reg_b.view().await.expect("view");
    let live: Vec<(&str, u32, u32)> = view
        .live
        .iter()
        .map(|(n, placed)| (n.id.as_str(), n.load.calls, *placed))
        .collect();
    assert_eq!(live, [("m1", 1, 0), ("m2", 0, 2)]);
    assert!(view.silent.is_empty());

    // A drain request reaches the node at its next heartbeat, which also resets
    // the placements its entry now reports.
    assert!(reg_a.request_drain("m2").await.expect("drain"));
    assert!(
        !reg_a.request_drain("nope").await.expect("unknown"),
        "unknown node"
    );
    assert!(
        reg_b.heartbeat(&entry("m2", 2)).await.expect("beat"),
        "asked to drain"
    );
    let view = reg_a.view().await.expect("view");
    assert_eq!(view.live[1].1, 0, "placements reset by the heartbeat");

    // m1 stops beating: after the timeout it is silent, not live.
    let deadline = Instant::now() + timeout * 3;
    loop {
        reg_b.heartbeat(&entry("m2", 2)).await.expect("beat");
        let view = reg_b.view().await.expect("view");
        if view.silent == ["m1"] {
            assert_eq!(view.live.len(), 1);
            break;
        }
        assert!(Instant::now() < deadline, "m1 never went silent: {view:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    reg_b.forget("m1").await.expect("forget");
    assert!(reg_b.view().await.expect("view").silent.is_empty());
    reg_b.clear_drain("m2").await.expect("clear");
    assert!(!reg_b.heartbeat(&entry("m2", 2)).await.expect("beat"));
}

/// A Redis of this test's own, to stop and start.
struct OwnRedis {
    port: u16,
    dir: tempfile::TempDir,
    child: Option<Child>,
}

impl OwnRedis {
    fn start() -> Option<Self> {
        let server = std::env::var("TEST_REDIS_SERVER").ok()?;
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("free port")
            .port();
        let mut redis = Self {
            port,
            dir: tempfile::tempdir().expect("dir"),
            child: None,
        };
        redis.spawn(&server);
        Some(redis)
    }

    fn spawn(&mut self, server: &str) {
        let child = Command::new(server)
            .args(["--bind", "127.0.0.1", "--port", &self.port.to_string()])
            .args(["--save", "", "--appendonly", "no"])
            .arg("--dir")
            .arg(self.dir.path())
            .stdout(Stdio::null())
            .spawn()
            .expect("redis-server starts");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(5);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(Instant::now() < deadline, "redis-server did not listen");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/0", self.port)
    }
}

impl Drop for OwnRedis {
    fn drop(&mut self) {
        self.stop();
    }
}

#[tokio::test]
async fn while_redis_is_away_every_seam_refuses_quickly_and_works_again_when_it_returns() {
    if redis_url().is_none() {
        return;
    }
    let mut redis = OwnRedis::start().expect("TEST_REDIS_SERVER names redis-server");
    let node = RedisCluster::connect(&config(&redis.url(), "outage", "node-a"))
        .await
        .expect("connect");
    let links = RedisLinks::new(node.clone());
    let limiter = RedisLimiter::new(node.clone(), "attempts", 10, Duration::from_secs(60));
    let lease = RedisLease::new(
        node.clone(),
        Duration::from_secs(10),
        Duration::from_secs(5),
    );
    let other = RedisCluster::connect(&config(&redis.url(), "outage", "node-b"))
        .await
        .expect("connect b");
    let (rooms_a, rooms_b) = (
        RedisRooms::start(node.clone()).await,
        RedisRooms::start(other).await,
    );
    links
        .put("t", "v".into(), Duration::from_secs(60))
        .await
        .expect("put");

    redis.stop();
    for _ in 0..3 {
        let started = Instant::now();
        let refused = links.get("t").await;
        assert!(
            matches!(refused, Err(ClusterError::Unavailable(_))),
            "{refused:?}"
        );
        assert!(
            started.elapsed() < Duration::from_secs(3),
            "refused quickly, not stalled: {:?}",
            started.elapsed()
        );
    }
    assert!(limiter.allow("login:a").await.is_err(), "fails closed");
    assert!(lease.acquire("dispatch").await.is_err());

    let server = std::env::var("TEST_REDIS_SERVER").expect("set above");
    redis.spawn(&server);
    // The same handle reconnects by itself (the restarted Redis is empty).
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match links.put("t2", "v2".into(), Duration::from_secs(60)).await {
            Ok(()) => break,
            Err(e) => assert!(Instant::now() < deadline, "never reconnected: {e}"),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(links.get("t2").await.expect("get").as_deref(), Some("v2"));
    assert!(limiter.allow("login:a").await.expect("allowed again"));
    let _held = lease.acquire("dispatch").await.expect("lease again");
    // The nodes' listeners subscribed again by themselves: a message crosses.
    rooms_a.open("after").await.expect("open");
    let (a_tx, mut a_rx) = tokio::sync::mpsc::channel(8);
    rooms_a
        .join("after", "c", Side::Customer, 1, a_tx)
        .await
        .expect("join a");
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut n = 0;
    loop {
        // Each try joins as a new session of the agent on node b.
        n += 1;
        let (b_tx, _b_rx) = tokio::sync::mpsc::channel(8);
        // Node b's first command since the restart reconnects it (a running node's
        // heartbeat does that within a second).
        if rooms_b
            .join("after", "g", Side::Agent, n, b_tx)
            .await
            .is_err()
        {
            assert!(Instant::now() < deadline, "node b never reconnected");
            continue;
        }
        if let Ok(Some(m)) = tokio::time::timeout(Duration::from_millis(500), a_rx.recv()).await {
            assert!(matches!(m, ServerMessage::PeerJoined(_)), "{m:?}");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "node a never heard from node b again"
        );
    }
}

/// The next message in `rx` within a second.
async fn next(rx: &mut tokio::sync::mpsc::Receiver<ServerMessage>) -> ServerMessage {
    tokio::time::timeout(Duration::from_secs(1), rx.recv())
        .await
        .expect("a message within a second")
        .expect("mailbox open")
}

#[tokio::test]
async fn a_call_room_spans_two_nodes() {
    let Some(url) = redis_url() else { return };
    let (a, b) = two_nodes(&url).await;
    let (on_a, on_b) = (
        RedisRooms::start(a.clone()).await,
        RedisRooms::start(b).await,
    );
    let mailbox = || tokio::sync::mpsc::channel::<ServerMessage>(8);

    let (customer_tx, mut customer) = mailbox();
    let refused = on_a
        .join("call-1", "c", Side::Customer, 1, customer_tx.clone())
        .await;
    assert_eq!(refused, Err(RoomError::UnknownRoom), "not opened yet");
    on_a.open("call-1").await.expect("open");
    assert!(
        on_b.exists("call-1").await.expect("exists"),
        "open on every node"
    );
    assert_eq!(
        on_a.join("call-1", "c", Side::Customer, 1, customer_tx)
            .await
            .expect("join"),
        []
    );
    let (agent_tx, mut agent) = mailbox();
    let peers = on_b
        .join("call-1", "g", Side::Agent, 7, agent_tx)
        .await
        .expect("join");
    assert_eq!(
        peers,
        [PeerInfo {
            participant: "c".into(),
            role: Side::Customer
        }],
        "the agent on node b sees the customer on node a"
    );
    assert_eq!(
        next(&mut customer).await,
        ServerMessage::PeerJoined(PeerInfo {
            participant: "g".into(),
            role: Side::Agent
        }),
        "and the customer on node a is told, through Redis"
    );
    let (third_tx, _third) = mailbox();
    assert_eq!(
        on_a.join("call-1", "x", Side::Customer, 2, third_tx).await,
        Err(RoomError::Full)
    );
    let mut members = on_a.members("call-1").await.expect("members");
    members.sort_by(|x, y| x.0.cmp(&y.0));
    assert_eq!(
        members,
        [
            ("c".to_owned(), Side::Customer),
            ("g".to_owned(), Side::Agent)
        ]
    );
    assert_eq!((on_a.counts().participants, on_a.counts().calls), (1, 1));

    assert!(
        !on_a.set_media_up("call-1", "c", 99).await.expect("up"),
        "not its session"
    );
    assert!(
        !on_a.set_media_up("call-1", "c", 1).await.expect("up"),
        "the agent's is not up"
    );
    assert!(
        on_b.set_media_up("call-1", "g", 7).await.expect("up"),
        "both up"
    );

    let withheld = ServerMessage::Moderation {
        party: Side::Customer,
        state: kefu_proto::signaling::ModerationState::Withheld,
    };
    on_b.notify_lasting("call-1", Side::Customer, withheld.clone())
        .await
        .expect("notify");
    assert_eq!(
        next(&mut customer).await,
        withheld,
        "sent to the other node's member"
    );
    assert_eq!(next(&mut agent).await, withheld, "and to this node's");
    assert_eq!(
        on_a.lasting("call-1").await.expect("lasting"),
        [withheld],
        "kept"
    );

    // The agent's page reconnects to node a: its session on node b is replaced.
    let (agent2_tx, mut agent2) = mailbox();
    let peers = on_a
        .join("call-1", "g", Side::Agent, 3, agent2_tx)
        .await
        .expect("rejoin");
    assert_eq!(peers.len(), 1);
    assert!(
        matches!(
            next(&mut agent).await,
            ServerMessage::Error {
                code: ErrorCode::Replaced,
                ..
            }
        ),
        "the old session on node b is told it was replaced"
    );
    assert!(
        !on_b.leave("call-1", "g", 7).await.expect("leave"),
        "the replaced session no longer holds the place"
    );
    assert_eq!(
        next(&mut customer).await,
        ServerMessage::PeerJoined(PeerInfo {
            participant: "g".into(),
            role: Side::Agent
        })
    );

    let gone = on_b.end("call-1", ServerMessage::Pong).await.expect("end");
    assert_eq!(gone.len(), 2);
    assert_eq!(next(&mut customer).await, ServerMessage::Pong);
    assert_eq!(next(&mut agent2).await, ServerMessage::Pong);
    assert!(
        !on_a.exists("call-1").await.expect("exists"),
        "the room is gone"
    );
    assert_eq!(
        on_a.counts(),
        RoomCounts::default(),
        "node a forgot its sessions"
    );
}

#[tokio::test]
async fn leaving_tells_the_other_node_and_an_empty_call_room_goes_away() {
    let Some(url) = redis_url() else { return };
    let (a, b) = two_nodes(&url).await;
    let (on_a, on_b) = (
        RedisRooms::start(a.clone()).await,
        RedisRooms::start(b).await,
    );
    on_a.create("demo").await.expect("standing room");
    on_a.open("call-2").await.expect("call room");
    let (c_tx, _c) = tokio::sync::mpsc::channel(8);
    let (g_tx, mut g) = tokio::sync::mpsc::channel(8);
    on_a.join("call-2", "c", Side::Customer, 1, c_tx)
        .await
        .expect("c");
    on_b.join("call-2", "g", Side::Agent, 1, g_tx)
        .await
        .expect("g");
    assert!(on_a.leave("call-2", "c", 1).await.expect("leave"));
    assert_eq!(
        next(&mut g).await,
        ServerMessage::PeerLeft {
            participant: "c".into()
        }
    );
    assert!(on_b.leave("call-2", "g", 1).await.expect("leave"));
    assert!(
        !on_b.exists("call-2").await.expect("exists"),
        "the call room went with its last member"
    );
    assert!(
        on_b.exists("demo").await.expect("exists"),
        "a standing room stays"
    );
    on_a.open("call-3").await.expect("open");
    on_b.close_if_empty("call-3").await.expect("close");
    assert!(
        !on_a.exists("call-3").await.expect("exists"),
        "nobody came: closed"
    );
    assert_eq!(keys(&url, &a).await, [a.key(&["room", "demo"])]);
}
