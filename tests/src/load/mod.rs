//! The SFU load benchmark: the same synthetic calls against kefu and against Janus
//! (and, given one, a kefu built from an earlier commit), one after the other on the
//! same machine, measured the same way.
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
pub mod ratios;
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

/// The report's name for the kefu under test, [`KEFU_BEFORE`] for the build it is
/// compared with, and Janus.
pub const KEFU: &str = "kefu";
pub const KEFU_BEFORE: &str = "kefu (before)";
pub const JANUS: &str = "janus";

#[derive(Debug, Clone)]
pub enum Target {
    Kefu {
        bin: PathBuf,
    },
    /// kefu built from the commit before the change being measured: run exactly as
    /// [`Target::Kefu`], only reported under its own name.
    KefuBefore {
        bin: PathBuf,
    },
    Janus {
        bin: PathBuf,
    },
}

impl Target {
    pub fn name(&self) -> &'static str {
        match self {
            Target::Kefu { .. } => KEFU,
            Target::KefuBefore { .. } => KEFU_BEFORE,
            Target::Janus { .. } => JANUS,
        }
    }

    /// Its folder under the work dir (logs, config, data).
    pub fn dir_name(&self) -> &'static str {
        match self {
            Target::Kefu { .. } => "kefu",
            Target::KefuBefore { .. } => "kefu-before",
            Target::Janus { .. } => "janus",
        }
    }
}

/// Whether a run's SFU is a kefu build, either one.
pub fn is_kefu(sfu: &str) -> bool {
    sfu == KEFU || sfu == KEFU_BEFORE
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
    let dir = config.work_dir.join(target.dir_name());
    std::fs::create_dir_all(&dir)?;
    let tally = Arc::new(Tally::default());
    let setup_started = Instant::now();
    match target {
        Target::Kefu { bin } | Target::KefuBefore { bin } => {
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
    let mut calls_up = 0;
    let budget = setup_budget(config.calls);
    let setup = tokio::time::timeout(budget, async {
        for i in 0..config.calls {
            let call = sfu
                .add_call(i, config.video, phase(i, config), tally)
                .await?;
            peers.extend(call);
            calls_up += 1;
        }
        anyhow::Ok(())
    })
    .await;
    let report = match setup {
        Ok(Ok(())) => measure(target, config, sfu.process(), tally, setup_started).await,
        Ok(Err(e)) => Err(e.context(format!(
            "{}: setting up call {}",
            target.name(),
            calls_up + 1
        ))),
        Err(_) => Err(anyhow::anyhow!(
            "{}: {calls_up} of {} calls set up in {} s; run stopped",
            target.name(),
            config.calls,
            budget.as_secs()
        )),
    };
    // Closed whatever happened, so nothing of this run lingers into the next one.
    for peer in peers {
        peer.close().await;
    }
    report
}

/// How long setting up `calls` calls may take before the run is given up: a minute,
/// and three seconds a call (kefu sets up 100 in well under that; a Janus that cannot
/// cope on a small machine would otherwise hang the benchmark).
pub fn setup_budget(calls: usize) -> Duration {
    Duration::from_secs(60 + 3 * u64::try_from(calls).unwrap_or(u64::MAX / 8).min(10_000))
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

/// One figure of a run, for the ratio tables.
pub type Figure = fn(&RunReport) -> f64;

/// A Markdown table of the runs, then kefu/Janus ratios when both ran, then the
/// kernel's floors when they were measured, then each kefu build's goal ratios
/// ([`ratios`]).
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
    let mean = |sfu: &str, f: Figure| mean_of(reports, sfu, f);
    let rows: [(&str, Figure); 4] = [
        ("pkt/s per busy core", |r| r.packets_per_busy_core),
        ("CPU per forwarded stream", |r| r.millicores_per_stream),
        ("forwarding delay p50", |r| r.delivery.delay_p50_ms),
        ("forwarding delay p99", |r| r.delivery.delay_p99_ms),
    ];
    if mean(KEFU, |_| 0.0).is_some() && mean(JANUS, |_| 0.0).is_some() {
        out += "\n| kefu / Janus (mean of runs) | ratio |\n|---|---|\n";
        for (name, f) in rows {
            if let (Some(k), Some(j)) = (mean(KEFU, f), mean(JANUS, f)) {
                out += &format!("| {name} | {:.2} |\n", k / j);
            }
        }
    }
    out += &floor_markdown(floors);
    out += &ratios::markdown(&ratios::kefu_ratios(reports, floors));
    out
}

/// The mean of `f` over the runs of `sfu`; `None` without one.
pub fn mean_of(reports: &[RunReport], sfu: &str, f: Figure) -> Option<f64> {
    let runs: Vec<f64> = reports.iter().filter(|r| r.sfu == sfu).map(f).collect();
    (!runs.is_empty()).then(|| runs.iter().sum::<f64>() / runs.len() as f64)
}

/// The kernel floors' table, when they were measured.
fn floor_markdown(floors: &[floor::FloorReport]) -> String {
    let Some(f) = floors.first() else {
        return String::new();
    };
    let mut out = format!(
        "\nKernel floor: a relay thread that only receives and sends (no WebRTC), \
         {:.0} packets/s of {} bytes in bursts of {} back to back (a video frame's packets), \
         on the same loopback path.\n\n\
         | relay | pkt/s per busy core | µs per packet: user / kernel | packets per send | relayed / arrived |\n\
         |---|---|---|---|---|\n",
        f.offered_pps, f.packet_bytes, f.burst,
    );
    for f in floors {
        out += &floor_row(f);
    }
    out
}

fn floor_row(f: &floor::FloorReport) -> String {
    let relay = f.relay.label();
    if let Some(why) = &f.unavailable {
        return format!("| {relay} | unavailable: {why} | — | — | — |\n");
    }
    let per_send = f.relayed as f64 / f.sends.max(1) as f64;
    if !f.measurable {
        return format!(
            "| {relay} | too little CPU to measure | — | {per_send:.1} | {} / {} |\n",
            f.relayed, f.received
        );
    }
    format!(
        "| {relay} | {:.0} | {:.1} / {:.1} | {per_send:.1} | {} / {} |\n",
        f.packets_per_busy_core,
        f.user_us_per_packet,
        f.kernel_us_per_packet,
        f.relayed,
        f.received,
    )
}

/// The floor's load: the packet rate and mean size the kefu runs (either build: they
/// carry the same calls) forwarded (on the wire: payload plus ≈ 40 bytes of RTP
/// header, extensions and SRTP tag), in bursts of a video frame's mean packets.
pub fn floor_load(reports: &[RunReport]) -> Option<floor::FloorLoad> {
    let kefu: Vec<&RunReport> = reports.iter().filter(|r| is_kefu(r.sfu)).collect();
    let packets: u64 = kefu.iter().map(|r| r.delivery.window_packets).sum();
    if packets == 0 {
        return None;
    }
    let bytes: u64 = kefu.iter().map(|r| r.delivery.window_bytes).sum();
    let pps = kefu.iter().map(|r| r.forwarded_pps).sum::<f64>() / kefu.len() as f64;
    Some(floor::FloorLoad {
        pps,
        packet_bytes: (bytes / packets) as usize + 40,
        burst: packets_per_video_frame(&kefu).unwrap_or(floor::DEFAULT_BURST),
    })
}

/// The mean packets per video frame the runs carried, within 1..=[`floor::BATCH`]:
/// the window's packets less its audio packets (one per audio frame; counted by send
/// time, the packets by arrival, which differ by a few at the window's edges), over
/// its video frames.
pub fn packets_per_video_frame(runs: &[&RunReport]) -> Option<usize> {
    let frames: u64 = runs.iter().map(|r| r.delivery.received_video_frames).sum();
    if frames == 0 {
        return None;
    }
    let packets: u64 = runs.iter().map(|r| r.delivery.window_packets).sum();
    let audio: u64 = runs.iter().map(|r| r.delivery.received_audio).sum();
    let per_frame = (packets.saturating_sub(audio) as f64 / frames as f64).round() as usize;
    Some(per_frame.clamp(1, floor::BATCH))
}
