//! The SFU load benchmark: the same synthetic calls against kefu and against Janus,
//! one after the other on the same machine, measured the same way.
//!
//! Topology: `calls` one-to-one calls (kefu's product: an agent and a customer), so
//! `2 × calls` publishers (Opus + VP8 each) and `2 × calls` subscribers, every party
//! receiving the other; `4 × calls` forwarded streams.

pub mod capacity;
pub mod floor;
pub mod frame_tail;
pub mod janus;
pub mod kefu;
pub mod media;
pub mod peer;
pub mod process;
pub mod soak;
pub mod vp8_loop;

use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::bail;
use serde::Serialize;

use media::{Delivery, Tally, VideoProfile};
use peer::Peer;
use process::{ServerProcess, Usage};

#[derive(Debug, Clone)]
pub struct LoadConfig {
    pub calls: usize,
    pub warmup: Duration,
    pub measure: Duration,
    pub video: VideoProfile,
    pub work_dir: PathBuf,
    /// The address Janus's media uses (see [`janus`]).
    pub private_ip: IpAddr,
}

#[derive(Debug, Clone)]
pub enum Target {
    Kefu { bin: PathBuf },
    Janus { bin: PathBuf },
}

impl Target {
    pub fn name(&self) -> &'static str {
        match self {
            Target::Kefu { .. } => "kefu",
            Target::Janus { .. } => "janus",
        }
    }
}

/// What one run against one SFU measured.
#[derive(Debug, Clone, Serialize)]
pub struct RunReport {
    pub sfu: &'static str,
    pub calls: usize,
    pub window_secs: f64,
    pub setup_secs: f64,
    pub delivery: Delivery,
    /// Forwarded packets arriving at the subscribers per second.
    pub forwarded_pps: f64,
    pub forwarded_mbps: f64,
    /// The SFU process's CPU time over the window, in cores.
    pub sfu_cores: f64,
    pub sfu_peak_rss_mib: f64,
    /// The load generator's own CPU (it shares the machine).
    pub client_cores: f64,
    pub packets_per_busy_core: f64,
    pub millicores_per_stream: f64,
    /// The SFU's CPU per forwarded packet, in its own code and libraries...
    pub sfu_user_us_per_packet: f64,
    /// ...and in the kernel (UDP send and receive, epoll, timers).
    pub sfu_kernel_us_per_packet: f64,
}

impl RunReport {
    pub fn audio_delivered(&self) -> f64 {
        ratio(self.delivery.received_audio, self.delivery.sent_audio)
    }

    pub fn video_delivered(&self) -> f64 {
        ratio(
            self.delivery.received_video_frames,
            self.delivery.sent_video_frames,
        )
    }

    pub fn loss(&self) -> f64 {
        ratio(self.delivery.lost_packets, self.delivery.expected_packets)
    }
}

fn ratio(a: u64, b: u64) -> f64 {
    if b == 0 { 0.0 } else { a as f64 / b as f64 }
}

/// Starts the SFU, connects every call, measures a window, stops everything.
pub async fn run(target: &Target, config: &LoadConfig) -> anyhow::Result<RunReport> {
    let dir = config.work_dir.join(target.name());
    std::fs::create_dir_all(&dir)?;
    let tally = Arc::new(Tally::default());
    let setup_started = Instant::now();
    match target {
        Target::Kefu { bin } => {
            let sfu = kefu::KefuTarget::start(bin, &dir, config.calls).await?;
            drive(sfu, target, config, &tally, setup_started).await
        }
        Target::Janus { bin } => {
            let sfu = janus::JanusTarget::start(bin, &dir, config.private_ip).await?;
            drive(sfu, target, config, &tally, setup_started).await
        }
    }
}

/// An SFU started for one run: how a call is put on it, and its process.
trait SfuUnderLoad {
    async fn add_call(
        &self,
        index: usize,
        video: VideoProfile,
        phase: Duration,
        tally: &Arc<Tally>,
    ) -> anyhow::Result<Vec<Peer>>;

    fn process(&mut self) -> &mut ServerProcess;
}

/// Connects every call, measures, hangs up. `sfu` lives until the end: Janus's API
/// session (kept alive by its long poll) owns the handles, and its expiry would end
/// the media.
async fn drive(
    mut sfu: impl SfuUnderLoad,
    target: &Target,
    config: &LoadConfig,
    tally: &Arc<Tally>,
    setup_started: Instant,
) -> anyhow::Result<RunReport> {
    let mut peers = Vec::new();
    for i in 0..config.calls {
        peers.extend(
            sfu.add_call(i, config.video, phase(i, config), tally)
                .await?,
        );
    }
    let report = measure(target, config, sfu.process(), tally, setup_started).await;
    for peer in peers {
        peer.close().await;
    }
    report
}

/// Spreads the publishers' send instants over one frame interval.
fn phase(call: usize, config: &LoadConfig) -> Duration {
    config.video.period() * u32::try_from(call).unwrap_or(0)
        / u32::try_from(config.calls.max(1)).unwrap_or(1)
}

async fn measure(
    target: &Target,
    config: &LoadConfig,
    process: &mut ServerProcess,
    tally: &Arc<Tally>,
    setup_started: Instant,
) -> anyhow::Result<RunReport> {
    let streams = 4 * config.calls;
    let deadline = Instant::now() + Duration::from_secs(60);
    while tally.streams_receiving(50) < streams {
        process.check_running()?;
        if Instant::now() >= deadline {
            bail!(
                "{}: only {} of {streams} streams flowing after 60 s",
                target.name(),
                tally.streams_receiving(50)
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let setup_secs = setup_started.elapsed().as_secs_f64();
    tokio::time::sleep(config.warmup).await;

    let (sfu_before, client_before) = (process.usage()?, Usage::of_self()?);
    let started = Instant::now();
    tally.window.open(media::now_us());
    let mut peak_rss = sfu_before.rss_bytes;
    while started.elapsed() < config.measure {
        tokio::time::sleep(Duration::from_millis(250)).await;
        peak_rss = peak_rss.max(process.usage()?.rss_bytes);
    }
    tally.window.close(media::now_us());
    let window_secs = started.elapsed().as_secs_f64();
    let (sfu_after, client_after) = (process.usage()?, Usage::of_self()?);
    // Frames stamped just before the window closed are still on their way.
    tokio::time::sleep(Duration::from_secs(1)).await;
    process.check_running()?;

    let delivery = tally.delivery();
    let sfu_cores = (sfu_after.cpu_secs - sfu_before.cpu_secs) / window_secs;
    let sfu_kernel_cores = (sfu_after.kernel_secs - sfu_before.kernel_secs) / window_secs;
    let forwarded_pps = delivery.window_packets as f64 / window_secs;
    let us_per_packet = |cores: f64| cores * 1e6 / forwarded_pps.max(1e-6);
    Ok(RunReport {
        sfu: target.name(),
        calls: config.calls,
        window_secs,
        setup_secs,
        delivery,
        forwarded_pps,
        forwarded_mbps: delivery.window_bytes as f64 * 8.0 / window_secs / 1e6,
        sfu_cores,
        sfu_peak_rss_mib: peak_rss as f64 / (1024.0 * 1024.0),
        client_cores: (client_after.cpu_secs - client_before.cpu_secs) / window_secs,
        packets_per_busy_core: forwarded_pps / sfu_cores.max(1e-6),
        millicores_per_stream: sfu_cores * 1000.0 / delivery.streams.max(1) as f64,
        sfu_user_us_per_packet: us_per_packet(sfu_cores - sfu_kernel_cores),
        sfu_kernel_us_per_packet: us_per_packet(sfu_kernel_cores),
    })
}

/// One figure of a run, for the ratio table.
type Figure = fn(&RunReport) -> f64;

/// A Markdown table of the runs, then kefu/Janus ratios when both ran, then the
/// kernel's floor when it was measured.
pub fn markdown(reports: &[RunReport], floors: &[floor::FloorReport]) -> String {
    let mut out = String::from(
        "| SFU | streams | forwarded pkt/s | Mbit/s | SFU cores | pkt/s per busy core | \
         µs per packet: user / kernel | millicores per stream | delay p50 / p99 ms | \
         jitter ms | audio / video delivered | seq loss | peak RSS MiB | load-gen cores |\n\
         |---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n",
    );
    for r in reports {
        out += &format!(
            "| {} | {} | {:.0} | {:.1} | {:.3} | {:.0} | {:.1} / {:.1} | {:.2} | {:.2} / {:.2} | \
             {:.2} | {:.2} % / {:.2} % | {:.3} % | {:.1} | {:.2} |\n",
            r.sfu,
            r.delivery.streams,
            r.forwarded_pps,
            r.forwarded_mbps,
            r.sfu_cores,
            r.packets_per_busy_core,
            r.sfu_user_us_per_packet,
            r.sfu_kernel_us_per_packet,
            r.millicores_per_stream,
            r.delivery.delay_p50_ms,
            r.delivery.delay_p99_ms,
            r.delivery.mean_jitter_ms,
            r.audio_delivered() * 100.0,
            r.video_delivered() * 100.0,
            r.loss() * 100.0,
            r.sfu_peak_rss_mib,
            r.client_cores,
        );
    }
    let mean = |sfu: &str, f: Figure| {
        let runs: Vec<f64> = reports.iter().filter(|r| r.sfu == sfu).map(f).collect();
        (!runs.is_empty()).then(|| runs.iter().sum::<f64>() / runs.len() as f64)
    };
    let rows: [(&str, Figure); 4] = [
        ("pkt/s per busy core", |r| r.packets_per_busy_core),
        ("CPU per forwarded stream", |r| r.millicores_per_stream),
        ("forwarding delay p50", |r| r.delivery.delay_p50_ms),
        ("forwarding delay p99", |r| r.delivery.delay_p99_ms),
    ];
    if mean("kefu", |_| 0.0).is_some() && mean("janus", |_| 0.0).is_some() {
        out += "\n| kefu / Janus (mean of runs) | ratio |\n|---|---|\n";
        for (name, f) in rows {
            if let (Some(k), Some(j)) = (mean("kefu", f), mean("janus", f)) {
                out += &format!("| {name} | {:.2} |\n", k / j);
            }
        }
    }
    if let Some(f) = floors.first() {
        out += &format!(
            "\nKernel floor: a relay thread that only receives and sends (no WebRTC), \
             {:.0} packets/s of {} bytes on the same loopback path.\n\n\
             | relay | pkt/s per busy core | µs per packet: user / kernel | relayed / arrived |\n\
             |---|---|---|---|\n",
            f.offered_pps, f.packet_bytes,
        );
    }
    for f in floors {
        let relay = match f.relay {
            floor::Relay::PerPacket => "recv_from + send_to".to_string(),
            floor::Relay::Batched => format!("recvmmsg + sendmmsg (≤ {})", floor::BATCH),
        };
        if f.measurable {
            out += &format!(
                "| {relay} | {:.0} | {:.1} / {:.1} | {} / {} |\n",
                f.packets_per_busy_core,
                f.user_us_per_packet,
                f.kernel_us_per_packet,
                f.relayed,
                f.received,
            );
        } else {
            out += &format!(
                "| {relay} | too little CPU to measure | — | {} / {} |\n",
                f.relayed, f.received
            );
        }
    }
    out
}

/// The floor's load: the packet rate and mean size the kefu runs forwarded (on the
/// wire: payload plus ≈ 40 bytes of RTP header, extensions and SRTP tag).
pub fn floor_load(reports: &[RunReport]) -> Option<(f64, usize)> {
    let kefu: Vec<&RunReport> = reports.iter().filter(|r| r.sfu == "kefu").collect();
    let packets: u64 = kefu.iter().map(|r| r.delivery.window_packets).sum();
    if packets == 0 {
        return None;
    }
    let bytes: u64 = kefu.iter().map(|r| r.delivery.window_bytes).sum();
    let pps = kefu.iter().map(|r| r.forwarded_pps).sum::<f64>() / kefu.len() as f64;
    Some((pps, (bytes / packets) as usize + 40))
}
