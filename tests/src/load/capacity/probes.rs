//! What a capacity step reads besides the tally: this process's timer lag, the media
//! node's /metrics, UDP drops and the machine's CPU from /proc.

use std::time::{Duration, Instant};

use super::StepSetup;
use crate::load::process::Usage;

/// The longest a 10 ms sleep overslept during `window`.
pub(super) async fn runtime_lag(window: Duration) -> Duration {
    let tick = Duration::from_millis(10);
    let started = Instant::now();
    let mut worst = Duration::ZERO;
    while started.elapsed() < window {
        let before = Instant::now();
        tokio::time::sleep(tick).await;
        worst = worst.max(before.elapsed().saturating_sub(tick));
    }
    worst
}

/// Counters read at both ends of the window.
#[derive(Debug, Clone, Copy)]
pub(super) struct Snapshot {
    pub(super) media: Usage,
    pub(super) bench: Usage,
    pub(super) machine_busy_secs: f64,
    pub(super) beauty: BeautyMetrics,
    pub(super) udp_drops: (u64, u64),
}

impl Snapshot {
    pub(super) async fn take(setup: &StepSetup<'_>) -> anyhow::Result<Self> {
        Ok(Self {
            media: Usage::of(setup.media_pid)?,
            bench: Usage::of_self()?,
            machine_busy_secs: crate::load::process::machine_busy_secs()?,
            beauty: beauty_metrics(setup.media_url).await?,
            udp_drops: udp_drops(setup.media_pid),
        })
    }
}

/// The media node's beauty pipelines, from its /metrics.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct BeautyMetrics {
    /// Pipelines running now.
    pub(super) running: f64,
    /// Agent frames dropped because a pipeline was behind, so far.
    pub(super) dropped: f64,
    /// Frames through a pipeline so far, and their total time in it.
    pub(super) frames: f64,
    pub(super) latency_secs: f64,
}

pub(super) async fn beauty_metrics(media_url: &str) -> anyhow::Result<BeautyMetrics> {
    let text = reqwest::get(format!("{media_url}/metrics"))
        .await?
        .text()
        .await?;
    let sample = |name: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
            .unwrap_or(0.0)
    };
    Ok(BeautyMetrics {
        running: sample("kefu_beauty_pipelines"),
        dropped: sample("kefu_beauty_frames_dropped_total"),
        frames: sample("kefu_beauty_latency_seconds_count"),
        latency_secs: sample("kefu_beauty_latency_seconds_sum"),
    })
}

/// Datagrams dropped so far by the UDP sockets of this network namespace (the last
/// column of /proc/net/udp): (the media node's, every other's). A socket closed since
/// takes its count with it.
fn udp_drops(media_pid: u32) -> (u64, u64) {
    let media: std::collections::HashSet<String> =
        std::fs::read_dir(format!("/proc/{media_pid}/fd"))
            .into_iter()
            .flatten()
            .filter_map(|fd| std::fs::read_link(fd.ok()?.path()).ok())
            .filter_map(|link| {
                let link = link.to_string_lossy().into_owned();
                Some(link.strip_prefix("socket:[")?.strip_suffix(']')?.to_owned())
            })
            .collect();
    let (mut own, mut others) = (0, 0);
    for table in ["/proc/net/udp", "/proc/net/udp6"] {
        let text = std::fs::read_to_string(table).unwrap_or_default();
        for line in text.lines().skip(1) {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let (Some(inode), Some(drops)) = (fields.get(9), fields.get(12)) else {
                continue;
            };
            let drops: u64 = drops.parse().unwrap_or(0);
            if media.contains(*inode) {
                own += drops;
            } else {
                others += drops;
            }
        }
    }
    (own, others)
}
