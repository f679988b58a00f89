//! `kefu-load`: the SFU load benchmark (see `kefu_tests::load`). Runs the same calls
//! against kefu, Janus and, with `--kefu-before`, an earlier kefu build, in the same
//! order every round, then the kernel floors, and prints Markdown tables with the
//! ratios (kefu/Janus, kefu ÷ floors, after ÷ before); `--json` also writes every run.
//! Meant to run inside `deploy/bench-sfu.sh` (a private network namespace with the
//! interface Janus needs).

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;
use kefu_tests::load::floor::{FloorLoad, FloorReport, Relay};
use kefu_tests::load::media::VideoProfile;
use kefu_tests::load::{self, LoadConfig, Target};

#[derive(Parser, Debug)]
#[command(name = "kefu-load", about = "Side-by-side SFU load: kefu and Janus")]
struct Args {
    /// One-to-one calls (2 publishers, 2 subscribers, 4 forwarded streams each).
    #[arg(long, default_value_t = 20)]
    calls: usize,
    /// Seconds measured per run, after the warm-up.
    #[arg(long, default_value_t = 20)]
    seconds: u64,
    #[arg(long, default_value_t = 5)]
    warmup: u64,
    #[arg(long, default_value_t = 1000)]
    video_kbps: u32,
    #[arg(long, default_value_t = 30)]
    fps: u32,
    /// Runs per SFU; each round runs kefu (before), kefu, Janus in that order.
    #[arg(long, default_value_t = 1)]
    rounds: usize,
    /// The `kefu` binary; without it kefu is not measured.
    #[arg(long)]
    kefu: Option<PathBuf>,
    /// A `kefu` binary built from an earlier commit, run exactly like `--kefu` before
    /// it in every round and reported as "kefu (before)".
    #[arg(long)]
    kefu_before: Option<PathBuf>,
    /// The `janus` binary; without it Janus is not measured.
    #[arg(long)]
    janus: Option<PathBuf>,
    /// Address of the benchmark interface Janus's media uses.
    #[arg(long, default_value = "10.77.0.1")]
    private_ip: IpAddr,
    #[arg(long, default_value = "target/kefu-load")]
    work_dir: PathBuf,
    /// Also write the runs as JSON here.
    #[arg(long)]
    json: Option<PathBuf>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    kefu::startup::install_tls_provider();
    let mut targets = Vec::new();
    if let Some(bin) = &args.kefu_before {
        targets.push(Target::KefuBefore { bin: bin.clone() });
    }
    if let Some(bin) = &args.kefu {
        targets.push(Target::Kefu { bin: bin.clone() });
    }
    if let Some(bin) = &args.janus {
        targets.push(Target::Janus { bin: bin.clone() });
    }
    anyhow::ensure!(
        !targets.is_empty(),
        "nothing to measure: give --kefu, --kefu-before and/or --janus"
    );
    let config = LoadConfig {
        calls: args.calls,
        warmup: Duration::from_secs(args.warmup),
        measure: Duration::from_secs(args.seconds),
        video: VideoProfile {
            kbps: args.video_kbps,
            fps: args.fps,
            keyframe_secs: 2,
        },
        work_dir: args.work_dir.clone(),
        private_ip: args.private_ip,
    };
    let mut reports = Vec::new();
    // A run that fails (an SFU that cannot set up the calls in time, or dies) is
    // reported, and the others still are.
    let mut failures = Vec::new();
    for round in 0..args.rounds {
        for target in &targets {
            eprintln!(
                "kefu-load: round {} of {}: {}",
                round + 1,
                args.rounds,
                target.name()
            );
            match load::run(target, &config).await {
                Ok(report) => {
                    eprintln!("{}", serde_json::to_string(&report)?);
                    reports.push(report);
                }
                Err(e) => {
                    eprintln!("kefu-load: {} failed: {e:#}", target.name());
                    let kefu = !matches!(target, Target::Janus { .. });
                    failures.push((
                        kefu,
                        format!("round {}, {}: {e:#}", round + 1, target.name()),
                    ));
                }
            }
        }
    }
    anyhow::ensure!(!reports.is_empty(), "every run failed: {failures:?}");
    let failed: Vec<&String> = failures.iter().map(|(_, f)| f).collect();
    // The kernel's share of forwarding, at the load kefu carried (see load::floor).
    let mut floors = Vec::new();
    if let Some(floor_load) = load::floor_load(&reports) {
        for relay in [Relay::PerPacket, Relay::Batched, Relay::Gso] {
            let floor = measure_floor(relay, floor_load, config.measure).await;
            eprintln!("{}", serde_json::to_string(&floor)?);
            floors.push(floor);
        }
    }
    let ratios = load::ratios::kefu_ratios(&reports, &floors);
    if let Some(path) = &args.json {
        let all = serde_json::json!({
            "runs": reports,
            "failed": failed,
            "floors": floors,
            "ratios": ratios,
        });
        std::fs::write(path, serde_json::to_string_pretty(&all)?)?;
    }
    println!(
        "{} calls, {} kbit/s VP8 at {} fps + Opus 32 kbit/s per publisher, {} s measured after {} s warm-up\n",
        args.calls, args.video_kbps, args.fps, args.seconds, args.warmup
    );
    println!("{}", load::markdown(&reports, &floors));
    for failure in &failed {
        println!("Failed run, not in the tables: {failure}\n");
    }
    // Janus failing on a small machine is a finding about Janus; a kefu run failing
    // is a failure of the benchmark.
    anyhow::ensure!(
        !failures.iter().any(|(kefu, _)| *kefu),
        "a kefu run failed: {failed:?}"
    );
    Ok(())
}

/// One kernel floor; a relay that fails is reported as unavailable, so the SFU runs
/// measured before it are not lost.
async fn measure_floor(relay: Relay, floor_load: FloorLoad, window: Duration) -> FloorReport {
    eprintln!(
        "kefu-load: kernel floor ({relay:?}) at {:.0} packets/s of {} bytes in bursts of {}",
        floor_load.pps, floor_load.packet_bytes, floor_load.burst
    );
    let measured =
        tokio::task::spawn_blocking(move || load::floor::measure_load(relay, floor_load, window))
            .await;
    match measured {
        Ok(Ok(floor)) => floor,
        Ok(Err(e)) => FloorReport::unavailable(relay, floor_load, format!("{e:#}")),
        Err(e) => FloorReport::unavailable(relay, floor_load, format!("the floor panicked: {e}")),
    }
}
