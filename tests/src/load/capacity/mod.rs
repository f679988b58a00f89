//! One step of the capacity benchmark (tests/src/bin/kefu-capacity-bench.rs): with
//! `calls` calls running on one media node, wait until every stream flows, warm up,
//! then measure a window: forwarding delay and delivery from the trailers, the frame
//! rate of the agents' re-encoded (beautified) video, the media node's CPU and memory
//! from /proc, its beauty pipelines from /metrics, and the CPU of the benchmark's own
//! process and of the whole machine (they share it).

use std::sync::Arc;
use std::time::{Duration, Instant};

mod probes;
mod table;

use super::media::{self, Delivery, StreamDelay, Tally};
use super::process::Usage;
use probes::{Snapshot, beauty_metrics, runtime_lag};
pub use table::{markdown, summary};

/// Limits a step must keep to count as held.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub delay_p99_ms: f64,
    /// Audio packets and video frames delivered, each (0..1).
    pub delivered: f64,
    /// Frames per second the customers receive of the agents' beautified video.
    pub beautified_fps: f64,
}

/// What a step measures against.
#[derive(Debug)]
pub struct StepSetup<'a> {
    pub calls: usize,
    /// Whether every agent's video goes through a beauty pipeline.
    pub beauty: bool,
    /// Every subscriber's streams; the agents' video sent counts here only without
    /// beauty.
    pub tally: &'a Arc<Tally>,
    /// The agents' sent video when beauty re-encodes it.
    pub agent_video: &'a Arc<Tally>,
    pub media_pid: u32,
    /// The media node's `http://host:port`.
    pub media_url: &'a str,
    pub warmup: Duration,
    pub window: Duration,
}

/// What one step measured.
#[derive(Debug, Clone, Default)]
pub struct StepReport {
    pub calls: usize,
    pub window_secs: f64,
    pub delivery: Delivery,
    /// Streams whose own delay p99 is over the limit: a few slow streams or all.
    pub slow_streams: Vec<StreamDelay>,
    pub measured_streams: usize,
    /// Frames per second each customer received of its agent's beautified video.
    pub beautified_fps: Vec<f64>,
    /// Frames per second each agent sent (beauty only: otherwise they count with the
    /// customers' in `delivery`).
    pub agent_fps: f64,
    pub pipelines: f64,
    pub pipeline_fps: f64,
    pub pipeline_dropped: f64,
    pub pipeline_latency_ms: f64,
    pub media_cores: f64,
    pub media_peak_rss_mib: f64,
    /// The benchmark's process: load generator and signaling nodes.
    pub bench_cores: f64,
    /// The whole machine: besides the two above, the engines (PostgreSQL, Redis,
    /// radosgw) and anything else running.
    pub machine_cores: f64,
    /// The longest a 10 ms timer of this process fired late in the window: the load
    /// generator (and signaling) stalling, as opposed to the media node.
    pub bench_lag_ms: f64,
    /// Datagrams the kernel dropped in the window for full receive buffers: on the
    /// media node's sockets, and on the others (the load generator's).
    pub media_udp_drops: u64,
    pub other_udp_drops: u64,
    /// Why the step did not hold (empty: it held).
    pub failures: Vec<String>,
    /// Windows measured for this step (a disturbed one is measured again).
    pub attempts: usize,
}

impl StepReport {
    pub fn held(&self) -> bool {
        self.failures.is_empty()
    }

    /// What the rest of the machine used: the engines, and whatever else runs there.
    pub fn other_cores(&self) -> f64 {
        self.machine_cores - self.media_cores - self.bench_cores
    }

    pub fn audio_delivered(&self) -> f64 {
        ratio(self.delivery.received_audio, self.delivery.sent_audio)
    }

    pub fn video_delivered(&self) -> f64 {
        ratio(
            self.delivery.received_video_frames,
            self.delivery.sent_video_frames,
        )
    }

    fn judge(&mut self, beauty: bool, limits: Limits) {
        let p99 = self.delivery.delay_p99_ms;
        if p99.is_nan() || p99 > limits.delay_p99_ms {
            self.failures.push(format!(
                "delay p99 {p99:.1} ms > {} ms",
                limits.delay_p99_ms
            ));
        }
        for (what, share) in [
            ("audio", self.audio_delivered()),
            ("video", self.video_delivered()),
        ] {
            if share < limits.delivered {
                self.failures.push(format!(
                    "{what} delivered {:.2} % < {} %",
                    share * 100.0,
                    limits.delivered * 100.0
                ));
            }
        }
        if !beauty {
            if !self.beautified_fps.is_empty() {
                self.failures.push(format!(
                    "{} video streams arrived without trailers",
                    self.beautified_fps.len()
                ));
            }
            return;
        }
        if self.beautified_fps.len() != self.calls {
            self.failures.push(format!(
                "{} of {} customers receive beautified video",
                self.beautified_fps.len(),
                self.calls
            ));
        }
        let slowest = self.beautified_fps.iter().copied().fold(f64::NAN, f64::min);
        if slowest < limits.beautified_fps {
            self.failures.push(format!(
                "beautified video {slowest:.1} fps < {} fps",
                limits.beautified_fps
            ));
        }
        if self.pipelines.round() as usize != self.calls {
            self.failures.push(format!(
                "{} pipelines for {} calls",
                self.pipelines, self.calls
            ));
        }
    }
}

fn ratio(a: u64, b: u64) -> f64 {
    if b == 0 { 0.0 } else { a as f64 / b as f64 }
}

/// Waits for the step's streams, warms up, measures the window.
pub async fn measure(setup: &StepSetup<'_>, limits: Limits) -> anyhow::Result<StepReport> {
    let mut report = StepReport {
        calls: setup.calls,
        ..StepReport::default()
    };
    let streams = 4 * setup.calls;
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let flowing = setup.tally.streams_receiving(50);
        let running = beauty_metrics(setup.media_url).await?.running;
        if flowing >= streams && (!setup.beauty || running as usize >= setup.calls) {
            break;
        }
        if Instant::now() >= deadline {
            report.failures.push(format!(
                "{flowing} of {streams} streams flowing, {running} pipelines after 60 s"
            ));
            return Ok(report);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(setup.warmup).await;

    for tally in [setup.tally, setup.agent_video] {
        tally.reset();
    }
    let before = Snapshot::take(setup).await?;
    let opened = media::now_us();
    for tally in [setup.tally, setup.agent_video] {
        tally.window.open(opened);
    }
    let started = Instant::now();
    let lag = tokio::spawn(runtime_lag(setup.window));
    let mut peak_rss = before.media.rss_bytes;
    while started.elapsed() < setup.window {
        tokio::time::sleep(Duration::from_millis(250)).await;
        peak_rss = peak_rss.max(Usage::of(setup.media_pid)?.rss_bytes);
    }
    report.bench_lag_ms = lag.await?.as_secs_f64() * 1000.0;
    let closed = media::now_us();
    for tally in [setup.tally, setup.agent_video] {
        tally.window.close(closed);
    }
    let secs = started.elapsed().as_secs_f64();
    let after = Snapshot::take(setup).await?;
    // Frames stamped just before the window closed are still on their way.
    tokio::time::sleep(Duration::from_secs(1)).await;

    report.window_secs = secs;
    report.delivery = setup.tally.delivery();
    let streams = setup.tally.stream_delays();
    report.measured_streams = streams.iter().filter(|s| s.samples > 0).count();
    report.slow_streams = streams
        .into_iter()
        .filter(|s| s.p99_ms > limits.delay_p99_ms)
        .collect();
    report.beautified_fps = setup
        .tally
        .plain_video_frames()
        .into_iter()
        .map(|frames| frames as f64 / secs)
        .collect();
    report.agent_fps =
        setup.agent_video.delivery().sent_video_frames as f64 / secs / setup.calls.max(1) as f64;
    let frames = after.beauty.frames - before.beauty.frames;
    report.pipelines = after.beauty.running;
    report.pipeline_fps = frames / secs;
    report.pipeline_dropped = after.beauty.dropped - before.beauty.dropped;
    report.pipeline_latency_ms =
        (after.beauty.latency_secs - before.beauty.latency_secs) * 1000.0 / frames.max(1.0);
    report.media_cores = (after.media.cpu_secs - before.media.cpu_secs) / secs;
    report.media_peak_rss_mib = peak_rss as f64 / (1024.0 * 1024.0);
    report.bench_cores = (after.bench.cpu_secs - before.bench.cpu_secs) / secs;
    report.machine_cores = (after.machine_busy_secs - before.machine_busy_secs) / secs;
    report.media_udp_drops = after.udp_drops.0.saturating_sub(before.udp_drops.0);
    report.other_udp_drops = after.udp_drops.1.saturating_sub(before.udp_drops.1);
    report.judge(setup.beauty, limits);
    Ok(report)
}
