//! kefu's memory and CPU from /proc: resident memory (VmRSS), and CPU time per thread
//! (utime + stime of /proc/PID/task/TID/stat) grouped by the thread names kefu gives
//! its parts. Threads a library starts (libvpx's encoder threads, for one) inherit
//! the name of the thread that started them, so they count with their part.

use std::collections::HashMap;
use std::time::Instant;

use crate::load::process::Usage;

/// Linux reports times in clock ticks of 1/100 s (USER_HZ) on every architecture we
/// run on.
const TICKS_PER_SEC: f64 = 100.0;

/// kefu's parts, by thread name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Component {
    /// `kefu-sfu` (media-server/src/driver.rs): the one thread forwarding media.
    Sfu,
    /// `beauty-<room>` (media-server/src/pipeline/worker.rs): decode, filter and
    /// encode of an agent's video.
    Pipeline,
    /// `kefu-moderation` (the classifier) and `screen-<room>` (the decoder of rooms
    /// without a pipeline, media-server/src/moderation/own_decode.rs).
    Moderation,
    /// `rec-<recording>` (recorder/src/service.rs): decode, composite, H.264/AAC
    /// encode into the spool, one thread per recording.
    Recorder,
    /// The tokio runtime (signaling, HTTP, uploads, the SFU's control side).
    Runtime,
    /// Everything else (the face engine, SQLite, the main thread), and threads that
    /// ended between two samples.
    Other,
}

impl Component {
    pub const ALL: [Component; 6] = [
        Component::Sfu,
        Component::Pipeline,
        Component::Moderation,
        Component::Recorder,
        Component::Runtime,
        Component::Other,
    ];

    pub fn of(thread: &str) -> Self {
        match thread {
            "kefu-sfu" => Self::Sfu,
            "kefu-moderation" => Self::Moderation,
            // "tokio-rt-worker" (older tokio: "tokio-runtime-worker", cut to 15 bytes).
            name if name.starts_with("tokio-") => Self::Runtime,
            name if name.starts_with("beauty-") => Self::Pipeline,
            name if name.starts_with("screen-") => Self::Moderation,
            name if name.starts_with("rec-") => Self::Recorder,
            _ => Self::Other,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::Sfu => "SFU",
            Self::Pipeline => "beauty pipeline",
            Self::Moderation => "moderation",
            Self::Recorder => "recorder",
            Self::Runtime => "runtime (tokio)",
            Self::Other => "other",
        }
    }

    /// Its place in [`Self::ALL`] (the declaration order).
    fn index(self) -> usize {
        self as usize
    }
}

/// One reading of kefu's process, this process and the machine.
#[derive(Debug, Clone)]
pub struct ProcSnapshot {
    at: Instant,
    pub rss_bytes: u64,
    process_cpu_secs: f64,
    /// Thread id → (name, CPU seconds).
    threads: HashMap<u32, (String, f64)>,
    bench_cpu_secs: f64,
    machine_busy_secs: f64,
}

impl ProcSnapshot {
    pub fn take(pid: u32) -> anyhow::Result<Self> {
        let at = Instant::now();
        let process = Usage::of(pid)?;
        let mut threads = HashMap::new();
        for entry in std::fs::read_dir(format!("/proc/{pid}/task"))? {
            let entry = entry?;
            let Some(tid) = entry.file_name().to_str().and_then(|t| t.parse().ok()) else {
                continue;
            };
            // A thread may end between the listing and the read: it is simply absent.
            let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
                continue;
            };
            if let Some(thread) = name_and_cpu(&stat) {
                threads.insert(tid, thread);
            }
        }
        Ok(Self {
            at,
            rss_bytes: process.rss_bytes,
            process_cpu_secs: process.cpu_secs,
            threads,
            bench_cpu_secs: Usage::of_self()?.cpu_secs,
            machine_busy_secs: crate::load::process::machine_busy_secs()?,
        })
    }
}

/// (name, utime + stime in seconds) from a thread's stat line; the name sits in
/// parentheses and may hold spaces and parentheses itself.
fn name_and_cpu(stat: &str) -> Option<(String, f64)> {
    let open = stat.find('(')?;
    let close = stat.rfind(')')?;
    let name = stat.get(open + 1..close)?.to_owned();
    let fields: Vec<&str> = stat.get(close + 1..)?.split_whitespace().collect();
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some((name, (utime + stime) as f64 / TICKS_PER_SEC))
}

/// CPU seconds used between snapshots (or summed over several spans), by part.
#[derive(Debug, Clone, Default)]
pub struct CpuSpan {
    pub secs: f64,
    pub process: f64,
    by_component: [f64; Component::ALL.len()],
    /// The thread (by name) with the most cores in any one span: a part saturates
    /// when one of its threads nears one core, whatever the machine has.
    pub busiest_thread: (String, f64),
    /// Thread names counted as "other", with their CPU seconds.
    pub others: HashMap<String, f64>,
    pub bench: f64,
    pub machine: f64,
}

impl CpuSpan {
    pub fn between(a: &ProcSnapshot, b: &ProcSnapshot) -> Self {
        let mut span = Self {
            secs: b.at.duration_since(a.at).as_secs_f64(),
            process: b.process_cpu_secs - a.process_cpu_secs,
            bench: b.bench_cpu_secs - a.bench_cpu_secs,
            machine: b.machine_busy_secs - a.machine_busy_secs,
            ..Self::default()
        };
        let mut counted = 0.0;
        for (tid, (name, cpu)) in &b.threads {
            // A thread born in the span: all its time is in it.
            let before = a.threads.get(tid).map_or(0.0, |(_, cpu)| *cpu);
            let used = (cpu - before).max(0.0);
            counted += used;
            let component = Component::of(name);
            span.by_component[component.index()] += used;
            if component == Component::Other {
                *span.others.entry(name.clone()).or_default() += used;
            }
            let cores = used / span.secs.max(1e-9);
            if cores > span.busiest_thread.1 {
                span.busiest_thread = (name.clone(), cores);
            }
        }
        // Threads that ended in the span took their time with them; the process
        // total still has it.
        let ended = (span.process - counted).max(0.0);
        span.by_component[Component::Other.index()] += ended;
        if ended > 0.0 {
            *span.others.entry("(ended threads)".into()).or_default() += ended;
        }
        span
    }

    /// Adds `other`, a later span.
    pub fn add(&mut self, other: &CpuSpan) {
        self.secs += other.secs;
        self.process += other.process;
        self.bench += other.bench;
        self.machine += other.machine;
        for (mine, theirs) in self.by_component.iter_mut().zip(other.by_component) {
            *mine += theirs;
        }
        for (name, cpu) in &other.others {
            *self.others.entry(name.clone()).or_default() += cpu;
        }
        if other.busiest_thread.1 > self.busiest_thread.1 {
            self.busiest_thread = other.busiest_thread.clone();
        }
    }

    /// Mean cores over the span.
    fn cores(&self, secs: f64) -> f64 {
        secs / self.secs.max(1e-9)
    }

    pub fn process_cores(&self) -> f64 {
        self.cores(self.process)
    }

    pub fn component_cores(&self, component: Component) -> f64 {
        self.cores(self.by_component[component.index()])
    }

    pub fn bench_cores(&self) -> f64 {
        self.cores(self.bench)
    }

    pub fn machine_cores(&self) -> f64 {
        self.cores(self.machine)
    }

    /// The part using the most CPU, and its cores.
    pub fn top_component(&self) -> (Component, f64) {
        Component::ALL
            .into_iter()
            .map(|c| (c, self.component_cores(c)))
            .fold((Component::Other, f64::MIN), |best, next| {
                if next.1 > best.1 { next } else { best }
            })
    }

    /// The `n` busiest names among "other", in cores.
    pub fn top_others(&self, n: usize) -> Vec<(String, f64)> {
        let mut others: Vec<(String, f64)> = self
            .others
            .iter()
            .map(|(name, cpu)| (name.clone(), self.cores(*cpu)))
            .collect();
        others.sort_by(|a, b| b.1.total_cmp(&a.1));
        others.truncate(n);
        others
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thread_names_map_to_parts() {
        assert_eq!(Component::of("kefu-sfu"), Component::Sfu);
        assert_eq!(Component::of("beauty-0f3a9c21"), Component::Pipeline);
        assert_eq!(Component::of("screen-0f3a9c21"), Component::Moderation);
        assert_eq!(Component::of("kefu-moderation"), Component::Moderation);
        assert_eq!(Component::of("rec-0f3a9c21"), Component::Recorder);
        assert_eq!(Component::of("tokio-rt-worker"), Component::Runtime);
        assert_eq!(Component::of("tokio-runtime-w"), Component::Runtime);
        assert_eq!(Component::of("face-engine"), Component::Other);
    }

    #[test]
    fn reads_a_thread_name_with_spaces_and_its_cpu() {
        let stat = "42 (my (odd) name) S 1 42 42 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 9 0";
        assert_eq!(name_and_cpu(stat), Some(("my (odd) name".into(), 3.0)));
        assert_eq!(name_and_cpu("garbage"), None);
    }
}
