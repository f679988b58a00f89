//! The SFU under test as a child process: started with its own config, its logs in the
//! work folder, stopped when dropped; its CPU time and resident memory read from /proc.

use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::{Context, bail};

/// Linux reports process times in clock ticks of 1/100 s (USER_HZ) on every
/// architecture we run on.
pub(super) const TICKS_PER_SEC: f64 = 100.0;

#[derive(Debug)]
pub struct ServerProcess {
    pub name: &'static str,
    child: Child,
}

impl ServerProcess {
    /// Starts `command`, its stdout and stderr going to `<dir>/<name>.log`.
    pub fn spawn(name: &'static str, mut command: Command, dir: &Path) -> anyhow::Result<Self> {
        let log = std::fs::File::create(dir.join(format!("{name}.log")))?;
        let child = command
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .with_context(|| format!("starting {name}"))?;
        Ok(Self { name, child })
    }

    /// [`Self::spawn`], then waits until `ready_url` answers (at most 30 s).
    pub async fn spawn_ready(
        name: &'static str,
        command: Command,
        dir: &Path,
        ready_url: &str,
    ) -> anyhow::Result<Self> {
        let mut process = Self::spawn(name, command, dir)?;
        wait_ready(&mut process, ready_url, Duration::from_secs(30)).await?;
        Ok(process)
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Fails when the process has already exited (bad config, port taken).
    pub fn check_running(&mut self) -> anyhow::Result<()> {
        if let Some(status) = self.child.try_wait()? {
            bail!(
                "{} exited early ({status}); see {}.log",
                self.name,
                self.name
            );
        }
        Ok(())
    }

    pub fn usage(&self) -> anyhow::Result<Usage> {
        Usage::of(self.pid())
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// CPU time used so far (user + kernel) and memory resident now.
#[derive(Debug, Clone, Copy, Default)]
pub struct Usage {
    pub cpu_secs: f64,
    /// The kernel's share of `cpu_secs` (system calls: the UDP path, epoll).
    pub kernel_secs: f64,
    pub rss_bytes: u64,
}

impl Usage {
    pub fn of(pid: u32) -> anyhow::Result<Self> {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
        let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
        let (user, kernel) = cpu_split_from_stat(&stat).context("unreadable /proc stat")?;
        Ok(Self {
            cpu_secs: user + kernel,
            kernel_secs: kernel,
            rss_bytes: rss_from_status(&status).context("no VmRSS")?,
        })
    }

    pub fn of_self() -> anyhow::Result<Self> {
        Self::of(std::process::id())
    }
}

/// (utime, stime) in seconds from a /proc stat line (fields 14 and 15; the command
/// name before them may hold spaces).
pub(super) fn cpu_split_from_stat(stat: &str) -> Option<(f64, f64)> {
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some((utime as f64 / TICKS_PER_SEC, stime as f64 / TICKS_PER_SEC))
}

fn rss_from_status(status: &str) -> Option<u64> {
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// A TCP port free on 127.0.0.1 right now.
pub fn free_port() -> anyhow::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// Polls `url` until it answers 2xx, the process dies, or `timeout` passes.
async fn wait_ready(
    process: &mut ServerProcess,
    url: &str,
    timeout: Duration,
) -> anyhow::Result<()> {
    let http = reqwest::Client::new();
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        process.check_running()?;
        if let Ok(res) = http.get(url).send().await
            && res.status().is_success()
        {
            return Ok(());
        }
        if tokio::time::Instant::now() >= deadline {
            bail!("{} did not answer {url} within {timeout:?}", process.name);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// CPU time the whole machine has been busy (/proc/stat: all but idle and iowait).
pub fn machine_busy_secs() -> anyhow::Result<f64> {
    let stat = std::fs::read_to_string("/proc/stat")?;
    let ticks: Vec<u64> = stat
        .lines()
        .next()
        .and_then(|l| l.strip_prefix("cpu "))
        .context("no cpu line in /proc/stat")?
        .split_whitespace()
        .filter_map(|v| v.parse().ok())
        .collect();
    // user nice system idle iowait irq softirq steal (guest time is inside user).
    let busy: u64 = ticks
        .iter()
        .take(8)
        .enumerate()
        .filter(|(i, _)| *i != 3 && *i != 4)
        .map(|(_, t)| t)
        .sum();
    Ok(busy as f64 / TICKS_PER_SEC)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_cpu_time_past_a_command_name_with_spaces() {
        let stat = "42 (my (odd) name) S 1 42 42 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 9 0 1 2 3";
        assert_eq!(cpu_split_from_stat(stat), Some((2.5, 0.5)));
        assert_eq!(cpu_split_from_stat("garbage"), None);
    }

    #[test]
    fn this_process_has_usage() {
        let usage = Usage::of_self().expect("own /proc entry");
        assert!(usage.rss_bytes > 0);
    }
}
