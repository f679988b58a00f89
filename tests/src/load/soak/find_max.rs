//! The most calls kefu holds: calls added one step at a time (the earlier ones keep
//! running), each step warmed up and then measured over a window against the limits,
//! as the capacity benchmark's steps are; the first step that does not hold ends it.

use std::time::Duration;

use super::calls::{CallSetup, SoakCall};
use super::metrics::ServerGauges;
use super::ramp::{RssAt, add_calls, settled_rss, wait_flowing};
use super::threads::{CpuSpan, ProcSnapshot};
use super::traffic::{Limits, WindowStats};

/// How the steps go.
#[derive(Debug, Clone, Copy)]
pub struct Stepping {
    pub step: usize,
    pub max_calls: usize,
    pub warmup: Duration,
    pub window: Duration,
    /// Windows measured again when one fails (the machine is shared).
    pub retries: usize,
    pub limits: Limits,
}

/// One step's figures.
#[derive(Debug, Clone)]
pub struct Step {
    pub calls: usize,
    pub window: WindowStats,
    pub cpu: CpuSpan,
    pub gauges: ServerGauges,
    pub rss_bytes: u64,
    /// Why it did not hold (empty: it held).
    pub failures: Vec<String>,
    pub attempts: usize,
}

impl Step {
    pub fn held(&self) -> bool {
        self.failures.is_empty()
    }
}

/// What the search found; `calls` keeps only the calls of the last step that held.
#[derive(Debug, Default)]
pub struct Search {
    pub steps: Vec<Step>,
    pub held: usize,
    /// Calls of the failing step, hung up again (their recordings still count).
    pub removed: Vec<String>,
}

impl Search {
    pub fn rss_readings(&self) -> Vec<RssAt> {
        self.steps
            .iter()
            .filter(|s| s.held())
            .map(|s| RssAt {
                calls: s.calls,
                bytes: s.rss_bytes,
            })
            .collect()
    }

    /// Why the search stopped: the failing step's limits, or the cap.
    pub fn stopped_by(&self, cap: usize) -> String {
        match self.steps.iter().find(|s| !s.held()) {
            Some(step) => format!("{} calls: {}", step.calls, step.failures.join("; ")),
            None => format!("the --max-calls cap ({cap}), not a limit"),
        }
    }
}

/// Steps up from the calls running now until a step does not hold or the cap is
/// reached; the failing step's calls are hung up again.
pub async fn find_max(
    setup: CallSetup<'_>,
    calls: &mut Vec<SoakCall>,
    next_index: &mut usize,
    stepping: Stepping,
) -> anyhow::Result<Search> {
    let mut search = Search::default();
    while calls.len() < stepping.max_calls {
        let target = (calls.len() + stepping.step.max(1)).min(stepping.max_calls);
        let before = calls.len();
        // A call that cannot even be set up (the join timing out under load) ends the
        // search like a failing window does.
        let step = match add_calls(setup, calls, next_index, target).await {
            Ok(()) => measure(setup, calls.len(), stepping).await?,
            Err(e) => Step {
                calls: target,
                window: WindowStats::default(),
                cpu: CpuSpan::default(),
                gauges: ServerGauges::default(),
                rss_bytes: 0,
                failures: vec![format!("a call could not be set up: {e:#}")],
                attempts: 1,
            },
        };
        eprintln!(
            "{} calls: customers' agent video ≥ {:.1} fps, delay p99 {:.1} ms, kefu {:.2} \
             cores, RSS {:.0} MiB{}",
            step.calls,
            step.window.min_customer_fps(),
            step.window.delay_p99_ms,
            step.cpu.process_cores(),
            super::hold::mib(step.rss_bytes),
            if step.held() {
                String::new()
            } else {
                format!(" — did not hold: {}", step.failures.join("; "))
            }
        );
        let held = step.held();
        search.steps.push(step);
        if !held {
            for call in calls.drain(before..) {
                search.removed.push(call.id.clone());
                call.hang_up().await;
            }
            break;
        }
        search.held = calls.len();
    }
    Ok(search)
}

/// Waits for the step's calls, warms up and measures a window (again, up to
/// `retries` times, while it fails).
async fn measure(setup: CallSetup<'_>, calls: usize, stepping: Stepping) -> anyhow::Result<Step> {
    let pid = setup.server.pid();
    let mut attempts = 0;
    loop {
        attempts += 1;
        let mut failures = Vec::new();
        if let Err(e) = wait_flowing(setup, calls).await {
            failures.push(format!("{e:#}"));
        } else {
            tokio::time::sleep(stepping.warmup).await;
        }
        let before = ProcSnapshot::take(pid)?;
        let window = setup.traffic.window(stepping.window, calls).await;
        let after = ProcSnapshot::take(pid)?;
        failures.extend(window.failures(calls, stepping.limits));
        let gauges = ServerGauges::read(setup.server).await?;
        let step = Step {
            calls,
            cpu: CpuSpan::between(&before, &after),
            rss_bytes: settled_rss(pid, 3).await?,
            window,
            gauges,
            failures,
            attempts,
        };
        if step.held() || attempts > stepping.retries {
            return Ok(step);
        }
        eprintln!(
            "{calls} calls: {} — measuring again",
            step.failures.join("; ")
        );
    }
}
