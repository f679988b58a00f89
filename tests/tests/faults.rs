//! The fault suite (`make test-faults`): a fault is injected under calls in progress,
//! then what it cost is checked and recorded as figures (tests/src/faults): calls
//! dropped, recordings lost (goal 0), media lost in a recording around the fault
//! (goal ≤ 2 s), time to recover. The kills of a whole kefu process and of a
//! signaling node are browser tests (tests/e2e/faults/). A jump of the host's clock is
//! out of scope (docs/reliability.md).

use std::time::{Duration, Instant};

use kefu_signaling::config::KefuConfig;
use kefu_tests::cluster::{Engines, OwnRedis, engines, start_cluster};
use kefu_tests::faults::engines::{Gateway, OwnPostgres};
use kefu_tests::faults::recording::{Outcome, settle};
use kefu_tests::faults::{Figures, disk_use};
use kefu_tests::scenario::{
    accepted_invite, another_agent, connected_call, enterprise_with_agent, verify,
};
use kefu_tests::{RtcClient, TestServer, spawn_app_with, wait_until};

/// Media lost in a recording around a fault: at most this (seconds).
const MEDIA_LOST_GOAL: f64 = 2.0;

fn suite_engines() -> Engines {
    engines().expect("the fault suite runs under deploy/with-*.sh (make test-faults)")
}

/// Recordings go to the suite's radosgw, in a bucket of this test's own.
fn on_suite_store(c: &mut KefuConfig, engines: &Engines) {
    let (endpoint, access, secret) = engines.s3.clone();
    c.storage.embedded = false;
    c.storage.endpoint = endpoint;
    c.storage.access_key = access;
    c.storage.secret_key = secret;
    c.storage.bucket = format!("kefu-{}", kefu_tests::cluster::fresh_prefix());
}

/// Fills in the recordings' part of `figures` and checks the goals.
fn judge(figures: &mut Figures, outcomes: &[Outcome]) {
    figures.recordings = outcomes.len();
    figures.recordings_lost = outcomes.iter().filter(|o| o.lost()).count();
    figures.media_lost_secs = outcomes
        .iter()
        .map(Outcome::media_lost_secs)
        .fold(0.0, f64::max);
    figures.record();
    for o in outcomes {
        assert!(!o.lost(), "a recording was lost: {o:?}");
    }
    assert!(
        figures.media_lost_secs <= MEDIA_LOST_GOAL,
        "media lost around the fault: {figures:?} {outcomes:?}"
    );
}

/// The customer still receives media and the call is connected.
async fn still_connected(
    server: &TestServer,
    call: &str,
    boss: &str,
    customer: &RtcClient,
) -> bool {
    // Media for 10 s at most (a call whose media stopped counts as dropped, it does
    // not abort the test before its figures are written).
    let before = customer.counts();
    let deadline = Instant::now() + Duration::from_secs(10);
    let flowing = loop {
        let now = customer.counts();
        if now.audio_packets >= before.audio_packets + 25
            && now.video_frames >= before.video_frames + 15
        {
            break true;
        }
        if Instant::now() >= deadline {
            break false;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    flowing && server.call_view(call, boss).await["state"] == "connected"
}

/// Frames the recorder's queue could not take (media lost inside a recording that
/// its timeline would not show: the transcoder fills a gap with the last picture).
async fn tap_dropped(server: &TestServer) -> f64 {
    server.metric("kefu_recording_tap_dropped_total").await
}

async fn hang_up(server: &TestServer, call: &str, boss: &str, customer: &RtcClient) {
    customer.hang_up();
    server
        .wait_for_call_state(call, boss, "ended", Duration::from_secs(15))
        .await;
}

fn outage() -> Duration {
    let secs = std::env::var("TEST_FAULT_OUTAGE_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(600);
    Duration::from_secs(secs)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_object_store_down_for_ten_minutes_loses_no_recording() {
    let engines = suite_engines();
    let mut gateway = Gateway::of_suite();
    let server = spawn_app_with(|c| on_suite_store(c, &engines)).await;
    let (alice, boss) = enterprise_with_agent(&server).await;
    verify(&server, "alice", true).await;
    let bob = another_agent(&server, &boss, "bob", "none").await;
    verify(&server, "bob", true).await;
    let (short, _a1, c1) = connected_call(&server, &alice).await;
    let (long, _a2, c2) = connected_call(&server, &bob).await;
    tokio::time::sleep(Duration::from_secs(5)).await;

    gateway.stop();
    let down = Instant::now();
    let spool = server.data_dir().join("spool");
    let mut peak_spool = disk_use(&spool);
    // One call ends early in the outage, the other runs through it.
    tokio::time::sleep(Duration::from_secs(20)).await;
    hang_up(&server, &short, &boss, &c1).await;
    let mut dropped = 0;
    while down.elapsed() < outage() {
        tokio::time::sleep(Duration::from_secs(5)).await;
        peak_spool = peak_spool.max(disk_use(&spool));
        let list = server.recordings_of(&short, &boss).await;
        assert_eq!(
            list[0]["state"], "processing",
            "a recording waits for the store: {list}"
        );
    }
    if !still_connected(&server, &long, &boss, &c2).await {
        dropped += 1;
    }
    gateway.start();
    let up = Instant::now();
    tokio::time::sleep(Duration::from_secs(5)).await;
    hang_up(&server, &long, &boss, &c2).await;
    let mut outcomes = Vec::new();
    for call in [&short, &long] {
        outcomes.push(settle(&server, call, &boss, Duration::from_secs(180)).await);
    }
    let recover = up.elapsed().as_secs_f64();
    // Every acknowledged part is in a stored object once: nothing was sent twice.
    let uploaded = server.metric("kefu_recording_uploaded_bytes_total").await as u64;
    let stored: u64 = outcomes.iter().map(|o| o.size_bytes).sum();
    let retries = server.metric("kefu_recording_upload_retries_total").await;
    let mut figures = Figures {
        fault: format!("object store down {} s", outage().as_secs()),
        calls: 2,
        calls_dropped: dropped,
        recover_secs: recover,
        note: format!(
            "spool peak {:.1} MiB for {:.0} s of calls; {retries} store calls retried; {} bytes acknowledged for {} stored",
            peak_spool as f64 / 1048576.0,
            outcomes.iter().map(|o| o.call_secs).sum::<f64>(),
            uploaded,
            stored
        ),
        ..Figures::default()
    };
    judge(&mut figures, &outcomes);
    assert_eq!(dropped, 0, "{figures:?}");
    assert_eq!(uploaded, stored, "a part was uploaded twice: {figures:?}");
    assert_eq!(
        tap_dropped(&server).await,
        0.0,
        "frames lost to the recorder"
    );
    assert!(retries > 0.0, "the outage was noticed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_postgres_restart_mid_call_keeps_the_call_and_its_recording() {
    let pg = OwnPostgres::start();
    let server = spawn_app_with(|c| c.database.url = Some(pg.url())).await;
    let (alice, boss) = enterprise_with_agent(&server).await;
    verify(&server, "alice", true).await;
    let (call, _agent, customer) = connected_call(&server, &alice).await;
    tokio::time::sleep(Duration::from_secs(3)).await;

    // Recovery counts from the moment the restart begins.
    let restarted = Instant::now();
    pg.restart();
    wait_until(
        "the API to answer again",
        Duration::from_secs(30),
        || async { (server.get("/api/v1/me", Some(&boss)).await.0 == 200).then_some(()) },
    )
    .await;
    let recover = restarted.elapsed().as_secs_f64();
    let dropped = usize::from(!still_connected(&server, &call, &boss, &customer).await);
    // A new call goes through too.
    let (next, agent2, customer2) = {
        let (id, agent_token, customer_token) = accepted_invite(&server, &alice, "video").await;
        let a = RtcClient::join_with_token(&server, &agent_token, "agent").await;
        let c = RtcClient::join_with_token(&server, &customer_token, "customer").await;
        c.wait_for_more(20, 20, Duration::from_secs(15)).await;
        (id, a, c)
    };
    hang_up(&server, &call, &boss, &customer).await;
    hang_up(&server, &next, &boss, &customer2).await;
    drop(agent2);
    let mut outcomes = Vec::new();
    for id in [&call, &next] {
        outcomes.push(settle(&server, id, &boss, Duration::from_secs(60)).await);
    }
    let mut figures = Figures {
        fault: "PostgreSQL restart".into(),
        calls: 1,
        calls_dropped: dropped,
        recover_secs: recover,
        note: "a new call connects after it".into(),
        ..Figures::default()
    };
    judge(&mut figures, &outcomes);
    assert_eq!(dropped, 0, "{figures:?}");
    assert_eq!(
        tap_dropped(&server).await,
        0.0,
        "frames lost to the recorder"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_restart_mid_call_keeps_the_call_and_its_recording() {
    let mut engines = suite_engines();
    let mut redis = OwnRedis::start();
    engines.redis = redis.url();
    let cluster = start_cluster(&engines, |c| c.signaling.reconnect_grace_secs = 3).await;
    let (sig1, sig2) = (&cluster.signaling[0], &cluster.signaling[1]);
    let (alice, boss) = enterprise_with_agent(sig1).await;
    verify(sig1, "alice", true).await;
    // The agent signals through one node, the customer through the other.
    let (call, agent_token, customer_token) = accepted_invite(sig1, &alice, "video").await;
    let _agent = RtcClient::join_with_token(sig1, &agent_token, "agent").await;
    let customer = RtcClient::join_with_token(sig2, &customer_token, "customer").await;
    customer
        .wait_for_more(40, 30, Duration::from_secs(15))
        .await;

    let restarted = Instant::now();
    redis.stop();
    redis.spawn();
    wait_until("sign-in to work again", Duration::from_secs(30), || async {
        (sig1.try_login("alice").await.0 == 200).then_some(())
    })
    .await;
    let recover = restarted.elapsed().as_secs_f64();
    // Past the node timeout and most of the rejoin time; the judgements are counted
    // and checked at the end.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let dropped = usize::from(!still_connected(sig2, &call, &boss, &customer).await);
    // A dropped call says how it ended (the figures carry it to CI's output).
    let how = if dropped > 0 {
        let view = sig2.call_view(&call, &boss).await;
        format!(
            "dropped: {} {} by {}",
            view["state"], view["end_reason"], view["ended_by"]
        )
    } else {
        String::new()
    };
    hang_up(sig1, &call, &boss, &customer).await;
    let outcome = settle(sig2, &call, &boss, Duration::from_secs(60)).await;
    let mut figures = Figures {
        fault: "Redis restart (2 signaling + 2 media nodes)".into(),
        calls: 1,
        calls_dropped: dropped,
        recover_secs: recover,
        note: how,
        ..Figures::default()
    };
    judge(&mut figures, &[outcome]);
    assert_eq!(dropped, 0, "{figures:?}");
    for node in &cluster.signaling {
        let judged = node.metric("kefu_cluster_nodes_lost_total").await;
        assert_eq!(
            judged, 0.0,
            "a live node was judged lost by {}",
            node.base_url
        );
    }
    for node in &cluster.media {
        let lost = node.metric("kefu_recording_tap_dropped_total").await;
        assert_eq!(lost, 0.0, "frames lost to the recorder on {node:?}");
    }
}

/// Media-node participants per node.
async fn participants(cluster: &kefu_tests::cluster::Cluster) -> Vec<f64> {
    let mut held = Vec::new();
    for node in &cluster.media {
        held.push(node.metric("kefu_sfu_participants").await);
    }
    held
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_media_node_killed_mid_call_loses_its_calls_but_not_their_recordings() {
    let engines = suite_engines();
    let mut cluster = start_cluster(&engines, |c| c.signaling.reconnect_grace_secs = 3).await;
    let sig1 = &cluster.signaling[0];
    let (alice, boss) = enterprise_with_agent(sig1).await;
    verify(sig1, "alice", true).await;
    let (lost, _lost_agent, lost_customer) = connected_call(sig1, &alice).await;
    let dead = participants(&cluster)
        .await
        .iter()
        .position(|p| *p >= 2.0)
        .expect("a media node holds the call");
    let (kept, _kept_agent, kept_customer) = connected_call(sig1, &alice).await;
    lost_customer
        .wait_for_more(100, 60, Duration::from_secs(15))
        .await;

    cluster.media[dead].kill();
    let killed_at = kefu_signaling::clock::now_ms();
    let sig1 = &cluster.signaling[0];
    let ended = sig1
        .wait_for_call_state(&lost, &boss, "ended", Duration::from_secs(10))
        .await;
    assert_eq!(ended["end_reason"], "node_lost", "{ended}");
    let kept_alive = still_connected(sig1, &kept, &boss, &kept_customer).await;
    // Back on the same disk: the spooled recording is recovered.
    cluster.media[dead].start().await;
    let restarted = (kefu_signaling::clock::now_ms() - killed_at) as f64 / 1000.0;
    let sig1 = &cluster.signaling[0];
    let mut lost_outcome = settle(sig1, &lost, &boss, Duration::from_secs(90)).await;
    // Media captured until the kill: what a recording could hold.
    let connected_at = ended["connected_at"].as_i64().unwrap_or(killed_at);
    lost_outcome.call_secs = (killed_at - connected_at) as f64 / 1000.0;
    hang_up(sig1, &kept, &boss, &kept_customer).await;
    let kept_outcome = settle(sig1, &kept, &boss, Duration::from_secs(60)).await;
    let mut figures = Figures {
        fault: "kill -9 of a media node".into(),
        calls: 2,
        calls_dropped: 1 + usize::from(!kept_alive),
        recover_secs: restarted,
        note: "its own call ends (node_lost) as it must; the other node's call goes on; recover = until the node is back".into(),
        ..Figures::default()
    };
    judge(&mut figures, &[lost_outcome, kept_outcome]);
    assert!(kept_alive, "the other node's call went on: {figures:?}");
}

/// A tmpfs of `mib` MiB on a new folder (the suite runs in a mount namespace of its
/// own: make test-faults); unmounted when dropped.
struct SmallDisk {
    dir: tempfile::TempDir,
}

impl SmallDisk {
    fn mount(mib: u32) -> Self {
        let dir = tempfile::tempdir().expect("dir");
        let status = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={mib}m"), "tmpfs"])
            .arg(dir.path())
            .status()
            .expect("mount runs");
        assert!(
            status.success(),
            "mounting a tmpfs needs a mount namespace of our own (make test-faults runs one)"
        );
        Self { dir }
    }

    /// Fills what is left with one file; returns its path.
    fn fill(&self) -> std::path::PathBuf {
        use std::io::Write;
        let path = self.dir.path().join("filler");
        let mut f = std::fs::File::create(&path).expect("filler");
        let chunk = vec![0u8; 64 * 1024];
        while f.write_all(&chunk).is_ok() {}
        let _ = f.flush();
        path
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(self.dir.path())
            .status();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_spool_disk_mid_call_loses_little_and_nothing_after_space_returns() {
    let disk = SmallDisk::mount(64);
    let spool = disk.dir.path().join("spool");
    let server = spawn_app_with(|c| c.recording.spool_dir = spool.clone()).await;
    let (alice, boss) = enterprise_with_agent(&server).await;
    verify(&server, "alice", true).await;
    let (call, _agent, customer) = connected_call(&server, &alice).await;
    tokio::time::sleep(Duration::from_secs(5)).await;

    let filler = disk.fill();
    tokio::time::sleep(Duration::from_secs(1)).await;
    let at_full = disk_use(&spool);
    tokio::time::sleep(Duration::from_secs(9)).await;
    let alive_while_full = still_connected(&server, &call, &boss, &customer).await;
    let held_back = disk_use(&spool);
    let grew_while_full = held_back.saturating_sub(at_full);
    std::fs::remove_file(&filler).expect("space freed");
    let freed = Instant::now();
    // Recovered once what waited in memory reaches the disk.
    wait_until(
        "the spool to be written again",
        Duration::from_secs(10),
        || async { (disk_use(&spool) > held_back).then_some(()) },
    )
    .await;
    let recover = freed.elapsed().as_secs_f64();
    tokio::time::sleep(Duration::from_secs(10)).await;
    let alive = alive_while_full && still_connected(&server, &call, &boss, &customer).await;
    hang_up(&server, &call, &boss, &customer).await;
    let outcome = settle(&server, &call, &boss, Duration::from_secs(60)).await;
    let mut figures = Figures {
        fault: "spool disk full 10 s".into(),
        calls: 1,
        calls_dropped: usize::from(!alive),
        recover_secs: recover,
        note: "a 64 MiB tmpfs filled to the last byte, then the filler deleted; the recording waited in memory".into(),
        ..Figures::default()
    };
    judge(&mut figures, &[outcome]);
    assert!(alive, "{figures:?}");
    assert!(
        grew_while_full == 0,
        "the spool grew by {grew_while_full} bytes while the disk was full: it never was"
    );
    assert_eq!(
        tap_dropped(&server).await,
        0.0,
        "frames lost to the recorder"
    );
}
