//! Bringing calls up: adding them, waiting until all their media flows and all their
//! parts run, and kefu's resident memory once it settled at a call count.

use std::time::{Duration, Instant};

use crate::load::process::Usage;
use anyhow::bail;

use super::calls::{CallSetup, SoakCall};
use super::metrics::ServerGauges;

/// How long new calls get to have every stream flowing and every part running.
const FLOW_TIMEOUT: Duration = Duration::from_secs(60);

/// Starts calls until there are `target`; the new ones are pushed onto `calls`.
pub async fn add_calls(
    setup: CallSetup<'_>,
    calls: &mut Vec<SoakCall>,
    next_index: &mut usize,
    target: usize,
) -> anyhow::Result<()> {
    while calls.len() < target {
        let call = SoakCall::start(setup, *next_index).await?;
        *next_index += 1;
        calls.push(call);
    }
    Ok(())
}

/// Waits until `calls` calls' four streams each flow and kefu records, screens and
/// (with beauty) re-encodes every call; `Err` says what was missing after a minute.
pub async fn wait_flowing(setup: CallSetup<'_>, calls: usize) -> anyhow::Result<()> {
    let deadline = Instant::now() + FLOW_TIMEOUT;
    loop {
        let flowing = setup.traffic.streams_flowing();
        let gauges = ServerGauges::read(setup.server).await?;
        if flowing >= 4 * calls && gauges.all_running(calls, setup.traffic.beauty) {
            return Ok(());
        }
        if Instant::now() >= deadline {
            bail!(
                "after {FLOW_TIMEOUT:?}: {flowing} of {} streams flowing; {} recordings, {} \
                 screened rooms, {} beauty pipelines for {calls} calls",
                4 * calls,
                gauges.recordings_active,
                gauges.moderation_rooms,
                gauges.pipelines
            );
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// kefu's resident memory, the mean of `samples` reads a second apart.
pub async fn settled_rss(pid: u32, samples: usize) -> anyhow::Result<u64> {
    let mut total = 0;
    for i in 0..samples.max(1) {
        if i > 0 {
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
        total += Usage::of(pid)?.rss_bytes;
    }
    Ok(total / samples.max(1) as u64)
}

/// Resident memory at a call count.
#[derive(Debug, Clone, Copy)]
pub struct RssAt {
    pub calls: usize,
    pub bytes: u64,
}

/// Memory per added call between the two readings with the most calls: `(from, to,
/// MiB per call)`.
pub fn marginal_rss(readings: &[RssAt], step: usize) -> Option<(usize, usize, f64)> {
    let top = readings.iter().max_by_key(|r| r.calls)?;
    let base = readings
        .iter()
        .filter(|r| r.calls < top.calls && r.calls + step.max(1) >= top.calls)
        .min_by_key(|r| r.calls)
        .or_else(|| {
            readings
                .iter()
                .filter(|r| r.calls < top.calls)
                .max_by_key(|r| r.calls)
        })?;
    let added = (top.calls - base.calls) as f64;
    let grown = top.bytes as f64 - base.bytes as f64;
    Some((base.calls, top.calls, grown / added / (1024.0 * 1024.0)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn marginal_memory_comes_from_the_top_readings() {
        let mib = |m: u64| m * 1024 * 1024;
        let readings = [
            RssAt {
                calls: 0,
                bytes: mib(200),
            },
            RssAt {
                calls: 15,
                bytes: mib(500),
            },
            RssAt {
                calls: 20,
                bytes: mib(600),
            },
        ];
        assert_eq!(marginal_rss(&readings, 5), Some((15, 20, 20.0)));
        // No reading `step` below the top: the nearest one below it.
        assert_eq!(marginal_rss(&readings, 2), Some((15, 20, 20.0)));
        assert_eq!(marginal_rss(&readings[..1], 5), None);
    }
}
