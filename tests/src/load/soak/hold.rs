//! The hold: the calls keep running for `hold` while every `sample` the window's
//! traffic, kefu's memory and per-part CPU and each call's state are read.

use std::time::{Duration, Instant};

use super::calls::SoakCall;
use super::metrics::ServerGauges;
use super::server::SoakServer;
use super::threads::{CpuSpan, ProcSnapshot};
use super::traffic::{Limits, Traffic, WindowStats};

/// One sample of the hold.
#[derive(Debug, Clone)]
pub struct Sample {
    /// Seconds since the hold began, at the sample's end.
    pub at_secs: f64,
    pub rss_bytes: u64,
    pub window: WindowStats,
    pub failures: Vec<String>,
    pub gauges: ServerGauges,
}

/// A call that dropped during the hold.
#[derive(Debug, Clone)]
pub struct Dropped {
    pub call: usize,
    pub at_secs: f64,
    pub why: String,
}

#[derive(Debug, Clone, Default)]
pub struct HoldReport {
    pub samples: Vec<Sample>,
    pub dropped: Vec<Dropped>,
    /// Over the whole hold.
    pub cpu: CpuSpan,
    /// kefu's resident memory when the hold began.
    pub rss_start_bytes: u64,
    pub withheld: u32,
}

/// Holds `calls` for `hold`, sampling every `sample`.
pub async fn hold(
    server: &mut SoakServer,
    calls: &[SoakCall],
    traffic: &Traffic,
    limits: Limits,
    hold: Duration,
    sample: Duration,
) -> anyhow::Result<HoldReport> {
    let pid = server.pid();
    let started = Instant::now();
    let mut last = ProcSnapshot::take(pid)?;
    let mut report = HoldReport {
        rss_start_bytes: last.rss_bytes,
        ..HoldReport::default()
    };
    // A window leaves a second for the frames sent at its end to arrive.
    let window = sample
        .saturating_sub(Duration::from_secs(1))
        .max(Duration::from_secs(1));
    while started.elapsed() + sample / 2 < hold {
        let stats = traffic.window(window, calls.len()).await;
        server.check_running()?;
        let now = ProcSnapshot::take(pid)?;
        let cpu = CpuSpan::between(&last, &now);
        report.cpu.add(&cpu);
        let at_secs = started.elapsed().as_secs_f64();
        for call in calls {
            if report.dropped.iter().any(|d| d.call == call.index) {
                continue;
            }
            if let Some(why) = call.broken(server).await? {
                eprintln!("  call {} dropped at {at_secs:.0} s: {why}", call.index);
                report.dropped.push(Dropped {
                    call: call.index,
                    at_secs,
                    why,
                });
            }
        }
        let failures = stats.failures(calls.len(), limits);
        let gauges = ServerGauges::read(server).await?;
        eprintln!(
            "  {at_secs:>5.0} s: RSS {:.1} MiB, kefu {:.2} cores (SFU {:.2}), customers' agent \
             video ≥ {:.1} fps, delay p99 {:.1} ms{}",
            mib(now.rss_bytes),
            cpu.process_cores(),
            cpu.component_cores(super::threads::Component::Sfu),
            stats.min_customer_fps(),
            stats.delay_p99_ms,
            if failures.is_empty() {
                String::new()
            } else {
                format!(" — {}", failures.join("; "))
            }
        );
        report.samples.push(Sample {
            at_secs,
            rss_bytes: now.rss_bytes,
            window: stats,
            failures,
            gauges,
        });
        last = now;
    }
    report.withheld = calls.iter().map(SoakCall::withheld).sum();
    Ok(report)
}

pub fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}
