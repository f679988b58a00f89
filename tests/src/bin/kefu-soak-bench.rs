//! Load and soak: one-to-one video calls on ONE `kefu serve` process (role all, the
//! product's one-process deployment, on its embedded SQLite and object store) with
//! recording and moderation on, so that all of kefu's CPU and memory is one pid.
//!
//! Calls are made through the product (an agent per call invites, the customer
//! accepts) and joined by the load generator's webrtc-rs peers sending real VP8 (a
//! libvpx loop, 640×480 at 30 fps) and Opus-sized audio, each frame with its send
//! time in a trailer. Either a fixed number of calls (`--calls`), or with
//! `--find-max` calls added one at a time until a step breaks a limit (customers
//! receive their agent's video at < 25 fps, forwarding delay p99 > 100 ms, delivery
//! < 99 %): the last count that held is kept. That load is then held (`--hold-secs`),
//! sampled every `--sample-secs`: kefu's RSS, its CPU per thread grouped into parts
//! (SFU, beauty pipeline, moderation, recorder, runtime), each window's traffic and
//! every call's state. Then every call is hung up through the product, and every
//! recording must become ready and pass ffprobe. The summary goes to stdout, progress
//! to stderr; goals missed are results, not errors (the exit status is for the tool).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use clap::{ArgGroup, Parser, ValueEnum};
use kefu_tests::load::soak;
use kefu_tests::load::vp8_loop::{self, Vp8Loop};
use soak::calls::{CallSetup, SoakCall};
use soak::find_max::{Search, Stepping, find_max};
use soak::hold::{HoldReport, hold};
use soak::ramp::{RssAt, add_calls, settled_rss, wait_flowing};
use soak::recordings::{self, RecordingCheck};
use soak::report::Summary;
use soak::server::SoakServer;
use soak::traffic::{Limits, Traffic};

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum OnOff {
    On,
    Off,
}

#[derive(Parser, Debug)]
#[command(
    name = "kefu-soak-bench",
    about = "Calls held on one kefu process with recording and moderation on: memory, CPU by part, recordings",
    group(ArgGroup::new("load").required(true).args(["calls", "find_max"]))
)]
struct Args {
    /// Beauty for every agent ("natural", the product's default) or none.
    #[arg(long, value_enum, default_value_t = OnOff::On)]
    beauty: OnOff,
    /// Hold this many calls.
    #[arg(long)]
    calls: Option<usize>,
    /// Add calls one at a time until a step breaks a limit; hold the last that held.
    #[arg(long)]
    find_max: bool,
    /// --find-max: calls at most.
    #[arg(long, default_value_t = 16)]
    max_calls: usize,
    /// --find-max: calls added per step.
    #[arg(long, default_value_t = 1)]
    step: usize,
    /// --find-max: seconds each step runs before its window...
    #[arg(long, default_value_t = 10)]
    step_warmup_secs: u64,
    /// ...and the window's length.
    #[arg(long, default_value_t = 15)]
    step_window_secs: u64,
    /// --find-max: a failing step's window is measured again this many times (the
    /// machine is shared).
    #[arg(long, default_value_t = 1)]
    retries: usize,
    /// Seconds the calls hold.
    #[arg(long, default_value_t = 600)]
    hold_secs: u64,
    /// Seconds between samples (each a traffic window, RSS and CPU reading).
    #[arg(long, default_value_t = 10)]
    sample_secs: u64,
    /// Seconds the calls run after they are added before memory is read and the hold
    /// begins.
    #[arg(long, default_value_t = 20)]
    warmup_secs: u64,
    /// RSS growth: the hold's first this many seconds are warm-up (at most a quarter
    /// of the hold)...
    #[arg(long, default_value_t = 60)]
    rss_warmup_secs: u64,
    /// ...then the mean of this many seconds is compared with that of the hold's last
    /// as many (at most half of what is left).
    #[arg(long, default_value_t = 60)]
    rss_window_secs: u64,
    /// Marginal memory per call: read at N−k and N calls (0: k = N/4, at least 1;
    /// with --find-max: 1).
    #[arg(long, default_value_t = 0)]
    marginal_calls: usize,
    /// Limits: forwarding delay p99 (ms)...
    #[arg(long, default_value_t = 100.0)]
    max_p99_ms: f64,
    /// ...frames per second every customer receives of its agent's video...
    #[arg(long, default_value_t = 25.0)]
    min_fps: f64,
    /// ...and audio and video delivered (%).
    #[arg(long, default_value_t = 99.0)]
    min_delivered: f64,
    /// Mean video bitrate each party sends (the encoded loop padded up to it).
    #[arg(long, default_value_t = 1000)]
    video_kbps: u32,
    /// Seconds the recordings get to become ready after the hang-ups.
    #[arg(long, default_value_t = 300)]
    recording_timeout_secs: u64,
    /// The kefu binary (default: the one beside this tool).
    #[arg(long)]
    kefu_bin: Option<PathBuf>,
    /// Keep the work folder (config, kefu.log, data) and print where it is.
    #[arg(long)]
    keep_dir: bool,
}

impl Args {
    fn limits(&self) -> Limits {
        Limits {
            delay_p99_ms: self.max_p99_ms,
            delivered: self.min_delivered / 100.0,
            customer_fps: self.min_fps,
        }
    }

    fn preset(&self) -> &'static str {
        match self.beauty {
            OnOff::On => "natural",
            OnOff::Off => "none",
        }
    }

    /// k of the marginal memory reading at N−k and N calls.
    fn marginal_step(&self, calls: usize) -> usize {
        match (self.marginal_calls, self.find_max) {
            (0, true) => 1,
            (0, false) => (calls / 4).max(1),
            (k, _) => k,
        }
    }

    /// The hold's (warm-up, window) for the memory growth, fitted into the hold.
    fn growth_span(&self) -> (f64, f64) {
        let hold = self.hold_secs as f64;
        let warmup = (self.rss_warmup_secs as f64).min(hold / 4.0);
        let window = (self.rss_window_secs as f64).min((hold - warmup) / 2.0);
        (warmup, window)
    }
}

/// The `kefu` binary beside this tool (both in target/<profile>/).
fn kefu_binary(args: &Args) -> anyhow::Result<PathBuf> {
    if let Some(bin) = &args.kefu_bin {
        return Ok(bin.clone());
    }
    let exe = std::env::current_exe()?;
    let beside = exe.with_file_name("kefu");
    anyhow::ensure!(
        beside.is_file(),
        "no kefu binary at {} (make build; or --kefu-bin)",
        beside.display()
    );
    Ok(beside)
}

/// How the calls were brought up, and the memory readings on the way.
struct Loaded {
    calls: Vec<SoakCall>,
    search: Option<Search>,
    readings: Vec<RssAt>,
    /// Calls already hung up (a failed --find-max step).
    ended: Vec<String>,
}

/// Brings the calls up: a fixed count (memory read at N−k and N), or the search.
async fn load(args: &Args, setup: CallSetup<'_>, idle: RssAt) -> anyhow::Result<Loaded> {
    let pid = setup.server.pid();
    let warmup = Duration::from_secs(args.warmup_secs);
    let (mut calls, mut next) = (Vec::new(), 0);
    let mut readings = vec![idle];
    let Some(target) = args.calls else {
        let stepping = Stepping {
            step: args.step,
            max_calls: args.max_calls,
            warmup: Duration::from_secs(args.step_warmup_secs),
            window: Duration::from_secs(args.step_window_secs),
            retries: args.retries,
            limits: args.limits(),
        };
        let search = find_max(setup, &mut calls, &mut next, stepping).await?;
        readings.extend(search.rss_readings());
        let ended = search.removed.clone();
        if !ended.is_empty() {
            // The failed step's calls are gone: let kefu settle at the held count.
            tokio::time::sleep(warmup).await;
        }
        return Ok(Loaded {
            calls,
            search: Some(search),
            readings,
            ended,
        });
    };
    let k = args.marginal_step(target);
    let mut counts = vec![target];
    if target > k {
        counts.insert(0, target - k);
    }
    for count in counts {
        eprintln!("bringing up {count} calls");
        add_calls(setup, &mut calls, &mut next, count).await?;
        // Calls that do not all flow are a result (the hold's windows show them);
        // none flowing at all is this tool's or the machine's failure.
        if let Err(e) = wait_flowing(setup, count).await {
            anyhow::ensure!(setup.traffic.streams_flowing() > 0, "no media flows: {e:#}");
            eprintln!("  not every call is up: {e:#}");
        }
        tokio::time::sleep(warmup).await;
        let bytes = settled_rss(pid, 5).await?;
        eprintln!("  {count} calls: RSS {:.1} MiB", soak::hold::mib(bytes));
        readings.push(RssAt {
            calls: count,
            bytes,
        });
    }
    Ok(Loaded {
        calls,
        search: None,
        readings,
        ended: Vec::new(),
    })
}

async fn run(args: &Args, dir: &Path) -> anyhow::Result<()> {
    let command_line = std::env::args().collect::<Vec<_>>().join(" ");
    let encoded = Vp8Loop::encode(640, 480, 2)?;
    let frames = Arc::new(encoded.padded_to(args.video_kbps));
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    eprintln!(
        "kefu-soak-bench: real VP8 ({} frames, 640×480, {} fps, {:.0} kbit/s), beauty {:?}, \
         recording and moderation on, {cores} cores; work folder {}",
        frames.len(),
        vp8_loop::FPS,
        frames.kbps(),
        args.beauty,
        dir.display()
    );
    let mut server = SoakServer::start(&kefu_binary(args)?, dir).await?;
    let boss = server.enterprise().await?;
    // Let the start-up settle (model loading, first allocations) before the idle read.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let idle = RssAt {
        calls: 0,
        bytes: settled_rss(server.pid(), 5).await?,
    };
    eprintln!("0 calls: RSS {:.1} MiB", soak::hold::mib(idle.bytes));
    let traffic = Traffic::new(args.beauty == OnOff::On);
    let loaded = {
        let setup = CallSetup {
            server: &server,
            boss: &boss,
            preset: args.preset(),
            frames: &frames,
            traffic: &traffic,
        };
        load(args, setup, idle).await?
    };
    let held = loaded.calls.len();
    let report = if held == 0 {
        eprintln!("no call count held: nothing to hold");
        HoldReport::default()
    } else {
        eprintln!("holding {held} calls for {} s", args.hold_secs);
        hold(
            &mut server,
            &loaded.calls,
            &traffic,
            args.limits(),
            Duration::from_secs(args.hold_secs),
            // A sample's window needs a second more than its length (see Traffic).
            Duration::from_secs(args.sample_secs.max(2)),
        )
        .await?
    };

    let mut call_ids = loaded.ended.clone();
    for call in loaded.calls {
        call_ids.push(call.id.clone());
        call.hang_up().await;
    }
    eprintln!("hung up; waiting for {} recordings", call_ids.len());
    let check: RecordingCheck = recordings::check(
        &server,
        &boss,
        &call_ids,
        Duration::from_secs(args.recording_timeout_secs),
        dir,
    )
    .await?;
    server.check_running()?;

    let (growth_warmup_secs, growth_window_secs) = args.growth_span();
    let summary = Summary {
        command_line,
        beauty: args.beauty == OnOff::On,
        calls: held,
        cores,
        hold: &report,
        recordings: &check,
        search: loaded.search.as_ref(),
        max_calls: args.max_calls,
        rss_idle_bytes: idle.bytes,
        rss_readings: loaded.readings,
        marginal_step: args.marginal_step(held),
        growth_warmup_secs,
        growth_window_secs,
    };
    println!("{}", summary.markdown());
    Ok(())
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    // The peers' DTLS needs rustls's provider; no kefu runs in this process to set it.
    kefu::startup::install_tls_provider();
    let dir = tempfile::Builder::new().prefix("kefu-soak-").tempdir()?;
    let outcome = run(&args, dir.path()).await;
    if let Err(e) = &outcome {
        // kefu's own words on what went wrong, before its folder goes.
        let log = std::fs::read_to_string(dir.path().join("kefu.log")).unwrap_or_default();
        let tail: Vec<&str> = log.lines().rev().take(20).collect();
        eprintln!("kefu-soak-bench failed: {e:#}\nlast lines of kefu.log:");
        for line in tail.into_iter().rev() {
            eprintln!("  {line}");
        }
    }
    if args.keep_dir {
        eprintln!("work folder kept: {}", dir.keep().display());
    }
    outcome
}
