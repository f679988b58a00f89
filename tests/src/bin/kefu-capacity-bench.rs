//! Calls per media node: one-to-one video calls on ONE `kefu serve --role media`
//! process, added `--step` at a time (earlier calls keep running), until a step's
//! forwarding delay p99 exceeds 50 ms, delivery falls under 99 % or, with beauty, the
//! customers get under 25 fps of the agents' video (or `--max-calls`). Two series, each
//! on a fresh cluster: forwarding only (the agents' beauty preset "none") and beauty
//! on for every agent ("natural", the product default).
//!
//! Calls are made through the product (agents, invites, room tokens) on two signaling
//! nodes in this process (agents on one, customers on the other) on Redis, PostgreSQL
//! and Ceph radosgw (`make bench-capacity` runs it under deploy/with-*.sh). Every
//! party is a webrtc-rs peer of the load generator (tests/src/load) sending real VP8
//! (a libvpx loop, 640×480 at 30 fps) and Opus-sized audio, each payload with its send
//! time in a trailer. Beauty re-encodes the agents' video, so there the delay is that
//! of the streams forwarded as is (customer video, both audios) and the agents' video
//! is judged by the frame rate the customers receive.

use std::sync::Arc;
use std::time::Duration;

use clap::{Parser, ValueEnum};
use kefu_signaling::accounts::{UserRole, admin};
use kefu_tests::TestServer;
use kefu_tests::cluster::{Cluster, engines, start_cluster_with};
use kefu_tests::load::capacity::{self, Limits, StepReport, StepSetup};
use kefu_tests::load::kefu::join_room;
use kefu_tests::load::media::Tally;
use kefu_tests::load::peer::Peer;
use kefu_tests::load::vp8_loop::{self, Vp8Loop};
use kefu_tests::scenario::{ENTERPRISE, PASSWORD, accepted_invite, another_agent, verify};
use serde_json::json;

/// Attempts per minute per address (every sign-in and invite comes from this one).
const ATTEMPTS: u32 = 10_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Which {
    Forwarding,
    Beauty,
    Both,
}

#[derive(Parser, Debug)]
#[command(
    name = "kefu-capacity-bench",
    about = "Calls per media node, with and without beauty"
)]
struct Args {
    /// Calls added per step, forwarding only.
    #[arg(long, default_value_t = 4)]
    step: usize,
    /// Calls added per step with beauty (each call costs a pipeline: finer steps).
    #[arg(long, default_value_t = 1)]
    beauty_step: usize,
    /// Calls at most (the step reaching it is the last).
    #[arg(long, default_value_t = 64)]
    max_calls: usize,
    /// Seconds each step runs before its window.
    #[arg(long, default_value_t = 5)]
    warmup: u64,
    /// Seconds measured per step.
    #[arg(long, default_value_t = 10)]
    window: u64,
    /// Which series to run.
    #[arg(long, value_enum, default_value_t = Which::Both)]
    series: Which,
    /// A step holds while its forwarding delay p99 stays at or under this (ms).
    #[arg(long, default_value_t = 50.0)]
    max_p99_ms: f64,
    /// Measure a failing step again when other processes used more cores than this
    /// during its window (a shared machine)...
    #[arg(long, default_value_t = 0.5)]
    disturbed_cores: f64,
    /// ...at most this many times.
    #[arg(long, default_value_t = 2)]
    retries: usize,
    /// Mean video bitrate each party sends: the encoded loop padded up to it (0: as
    /// encoded; the test picture encodes smaller than a camera's picture).
    #[arg(long, default_value_t = 1000)]
    video_kbps: u32,
    /// Record every call (the product's default; off so that the series measure
    /// forwarding and beauty alone).
    #[arg(long)]
    recording: bool,
    /// Screen every video call (the product's default; off for the same reason).
    #[arg(long)]
    moderation: bool,
}

/// What every call of a series shares.
struct Bench<'a> {
    args: &'a Args,
    cluster: &'a Cluster,
    boss: String,
    preset: &'static str,
    frames: &'a Arc<Vp8Loop>,
    tally: Arc<Tally>,
    agent_video: Arc<Tally>,
}

impl Bench<'_> {
    fn beauty(&self) -> bool {
        self.preset != "none"
    }

    /// Call `n`: a new agent invites, the customer accepts, both join (the agent on
    /// the first signaling node, the customer on the second) and publish.
    async fn add_call(&self, n: usize) -> anyhow::Result<[Peer; 2]> {
        let (agents, customers) = (&self.cluster.signaling[0], &self.cluster.signaling[1]);
        let login = format!("agent{n}");
        let token = another_agent(agents, &self.boss, &login, self.preset).await;
        verify(agents, &login, true).await;
        let (id, agent_token, customer_token) = accepted_invite(agents, &token, "video").await;
        // Beauty re-encodes the agents' video: what they send is counted apart.
        let agent_video = if self.beauty() {
            &self.agent_video
        } else {
            &self.tally
        };
        let mut agent = Peer::new(None, &self.tally).await;
        agent
            .publish_vp8_loop(
                &format!("{id}-agent"),
                self.frames,
                phase(2 * n),
                &self.tally,
                agent_video,
            )
            .await?;
        join_room(&agents.ws_url, &mut agent, &agent_token).await?;
        let mut customer = Peer::new(None, &self.tally).await;
        customer
            .publish_vp8_loop(
                &format!("{id}-customer"),
                self.frames,
                phase(2 * n + 1),
                &self.tally,
                &self.tally,
            )
            .await?;
        join_room(&customers.ws_url, &mut customer, &customer_token).await?;
        Ok([agent, customer])
    }

    /// Steps up until one does not hold or the cap is reached.
    async fn steps(&self, name: &str) -> anyhow::Result<Vec<StepReport>> {
        let media = &self.cluster.media[0];
        let pid = media
            .pid()
            .ok_or_else(|| anyhow::anyhow!("the media node is not running"))?;
        let limits = Limits {
            delay_p99_ms: self.args.max_p99_ms,
            delivered: 0.99,
            beautified_fps: 25.0,
        };
        let (mut calls, mut peers, mut reports) = (0, Vec::new(), Vec::new());
        while calls < self.args.max_calls {
            let step = if self.beauty() {
                self.args.beauty_step
            } else {
                self.args.step
            };
            let target = (calls + step.max(1)).min(self.args.max_calls);
            while calls < target {
                peers.extend(self.add_call(calls).await?);
                calls += 1;
            }
            let setup = StepSetup {
                calls,
                beauty: self.beauty(),
                tally: &self.tally,
                agent_video: &self.agent_video,
                media_pid: pid,
                media_url: &media.base_url,
                warmup: Duration::from_secs(self.args.warmup),
                window: Duration::from_secs(self.args.window),
            };
            let report = self.measure(name, &setup, limits).await?;
            let held = report.held();
            reports.push(report);
            if !held {
                break;
            }
        }
        for peer in peers {
            peer.close().await;
        }
        Ok(reports)
    }
}

impl Bench<'_> {
    /// Measures a step; again (same calls) while it fails with other processes on the
    /// machine busier than `--disturbed-cores` (this machine is shared), at most
    /// `--retries` times.
    async fn measure(
        &self,
        name: &str,
        setup: &StepSetup<'_>,
        limits: Limits,
    ) -> anyhow::Result<StepReport> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            let mut report = capacity::measure(setup, limits).await?;
            report.attempts = attempt;
            eprintln!(
                "{name}, {} calls: delay p99 {:.1} ms, media node {:.2} cores, \
                 this process {:.2} (stalled ≤ {:.0} ms), other processes {:.2}{}",
                setup.calls,
                report.delivery.delay_p99_ms,
                report.media_cores,
                report.bench_cores,
                report.bench_lag_ms,
                report.other_cores(),
                if report.held() {
                    ""
                } else {
                    " — did not hold"
                }
            );
            let mut slow = report.slow_streams.clone();
            slow.sort_by(|a, b| b.p99_ms.total_cmp(&a.p99_ms));
            for stream in slow.iter().take(3) {
                eprintln!("  slowest: {stream:?}");
            }
            let disturbed = report.other_cores() > self.args.disturbed_cores;
            if report.held() || !disturbed || attempt > self.args.retries {
                return Ok(report);
            }
            eprintln!("  disturbed by other processes: measuring again");
        }
    }
}

/// Publisher `i`'s start within a keyframe interval, so that neither the publishers'
/// frames nor their keyframes come in lockstep (golden-ratio spread: calls added later
/// fall between earlier ones).
fn phase(i: usize) -> Duration {
    let interval = Duration::from_secs(1) * vp8_loop::GOP as u32 / vp8_loop::FPS;
    interval.mul_f64((i as f64 * 0.618_033_988_75).fract())
}

/// The scenario enterprise with its admin `boss` (whose token this returns), recording
/// and screening as `args` asks.
async fn enterprise(node: &TestServer, args: &Args) -> String {
    node.enterprise(ENTERPRISE).await;
    node.user(ENTERPRISE, "boss", UserRole::Admin, PASSWORD)
        .await;
    let boss = node.login("boss", PASSWORD).await;
    admin::set_recording(&node.store, ENTERPRISE, args.recording)
        .await
        .expect("recording setting");
    let path = "/api/v1/enterprise/moderation-settings";
    let (status, mut settings) = node.get(path, Some(&boss)).await;
    assert_eq!(status, 200, "{settings}");
    settings["enabled"] = json!(args.moderation);
    let (status, body) = node.put(path, Some(&boss), Some(settings)).await;
    assert_eq!(status, 200, "{body}");
    boss
}

/// One series on a cluster of its own (two signaling nodes, one media node).
async fn series(
    args: &Args,
    name: &str,
    preset: &'static str,
    frames: &Arc<Vp8Loop>,
) -> anyhow::Result<Vec<StepReport>> {
    let engines =
        engines().expect("TEST_REDIS_URL, TEST_POSTGRES_URL, TEST_S3_* (make bench-capacity)");
    let cluster = start_cluster_with(&engines, 1, |c| {
        c.auth.login_attempts_per_minute = ATTEMPTS;
        c.server.drain_timeout_secs = 1;
    })
    .await;
    let boss = enterprise(&cluster.signaling[0], args).await;
    let bench = Bench {
        args,
        cluster: &cluster,
        boss,
        preset,
        frames,
        tally: Arc::new(Tally::default()),
        agent_video: Arc::new(Tally::default()),
    };
    let steps = bench.steps(name).await;
    drop(bench);
    let Cluster { signaling, media } = cluster;
    drop(media);
    for node in signaling {
        let _ = node.stop().await;
    }
    steps
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let encoded = Vp8Loop::encode(640, 480, 2)?;
    let encoded_kbps = encoded.kbps();
    let frames = Arc::new(encoded.padded_to(args.video_kbps));
    println!(
        "Every party sends real VP8 (libvpx loop of {} frames, 640×480, {} fps, {:.0} kbit/s \
         encoded, sent as {:.0} kbit/s with filler after each frame's data, a keyframe every {} \
         frames) and 80-byte audio every 20 ms. Steps of {} calls ({} with beauty) to at \
         most {}, {} s warm-up, {} s window; held: delay p99 ≤ {} ms, audio and video ≥ 99 % \
         delivered, with beauty ≥ 25 fps of beautified video at every customer. Recording {}, \
         moderation {}. {} cores.",
        frames.len(),
        vp8_loop::FPS,
        encoded_kbps,
        frames.kbps(),
        vp8_loop::GOP,
        args.step,
        args.beauty_step,
        args.max_calls,
        args.warmup,
        args.window,
        args.max_p99_ms,
        if args.recording { "on" } else { "off" },
        if args.moderation { "on" } else { "off" },
        std::thread::available_parallelism().map_or(0, |n| n.get()),
    );
    let all = [
        (
            Which::Forwarding,
            "forwarding only (beauty preset \"none\")",
            "none",
        ),
        (Which::Beauty, "beauty on (preset \"natural\")", "natural"),
    ];
    let mut summaries = Vec::new();
    for (which, name, preset) in all {
        if args.series != Which::Both && args.series != which {
            continue;
        }
        let steps = series(&args, name, preset, &frames).await?;
        println!(
            "\n### {name}\n\n{}",
            capacity::markdown(&steps, preset != "none")
        );
        summaries.push(capacity::summary(name, &steps, args.max_calls));
    }
    println!();
    for line in summaries {
        println!("{line}");
    }
    Ok(())
}
