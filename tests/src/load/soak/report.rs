//! The run's summary as Markdown: one table of results against the goals, the CPU
//! split by part, and (with --find-max) the steps.

use std::fmt::Write;

use super::find_max::Search;
use super::hold::{HoldReport, Sample, mib};
use super::ramp::{RssAt, marginal_rss};
use super::recordings::RecordingCheck;
use super::threads::{Component, CpuSpan};

/// Goals the requirement states (measured against, never enforced).
const GOAL_GROWTH_PCT: f64 = 5.0;
const GOAL_MARGINAL_MIB: f64 = 30.0;
const MIB: f64 = 1024.0 * 1024.0;

/// Everything the summary shows.
#[derive(Debug)]
pub struct Summary<'a> {
    pub command_line: String,
    pub beauty: bool,
    pub calls: usize,
    pub cores: usize,
    pub hold: &'a HoldReport,
    pub recordings: &'a RecordingCheck,
    pub search: Option<&'a Search>,
    pub max_calls: usize,
    pub rss_idle_bytes: u64,
    pub rss_readings: Vec<RssAt>,
    pub marginal_step: usize,
    /// The span of the hold whose memory is compared: warm-up, then the window
    /// averaged at each end.
    pub growth_warmup_secs: f64,
    pub growth_window_secs: f64,
}

/// Mean RSS of the samples after `warmup` in its first `window`, and in the last
/// `window`: (first, last, growth %).
pub fn rss_growth(samples: &[Sample], warmup: f64, window: f64) -> Option<(f64, f64, f64)> {
    let end = samples.last()?.at_secs;
    let mean = |pick: &dyn Fn(f64) -> bool| {
        let picked: Vec<f64> = samples
            .iter()
            .filter(|s| pick(s.at_secs))
            .map(|s| s.rss_bytes as f64)
            .collect();
        (!picked.is_empty()).then(|| picked.iter().sum::<f64>() / picked.len() as f64)
    };
    let first = mean(&|t| t > warmup && t <= warmup + window)?;
    let last = mean(&|t| t > end - window)?;
    Some((first, last, (last - first) / first * 100.0))
}

impl Summary<'_> {
    pub fn markdown(&self) -> String {
        let mut out = String::new();
        let mode = if self.beauty {
            "beauty on (preset \"natural\") for every agent"
        } else {
            "beauty off (preset \"none\")"
        };
        let _ = writeln!(
            out,
            "\n### Soak: {} calls, {mode}, recording and moderation on\n",
            self.calls
        );
        let _ = writeln!(out, "`{}`\n", self.command_line);
        out += "| measure | value | goal |\n|---|---|---|\n";
        for (what, value, goal) in self.rows() {
            let _ = writeln!(out, "| {what} | {value} | {goal} |");
        }
        out += &self.cpu_table(&self.hold.cpu);
        if let Some(search) = self.search {
            out += &steps_table(search);
        }
        if !self.recordings.problems.is_empty() {
            out += "\nRecordings not ready and playable:\n";
            for line in self.recordings.problems.iter().take(20) {
                let _ = writeln!(out, "- {line}");
            }
        }
        if !self.hold.dropped.is_empty() {
            out += "\nDropped calls:\n";
            for d in &self.hold.dropped {
                let _ = writeln!(out, "- call {} at {:.0} s: {}", d.call, d.at_secs, d.why);
            }
        }
        let _ = writeln!(out, "\nWhat saturates first: {}", self.saturates_first());
        out
    }

    fn rows(&self) -> Vec<(String, String, String)> {
        let hold = self.hold;
        let held_secs = hold.samples.last().map_or(0.0, |s| s.at_secs);
        let calls = self.calls.max(1) as f64;
        let mut rows = vec![
            row("calls held", self.calls.to_string(), self.calls_goal()),
            row(
                "hold",
                format!("{held_secs:.0} s, {} samples", hold.samples.len()),
                "600 s".into(),
            ),
            row("dropped calls", hold.dropped.len().to_string(), "0".into()),
        ];
        let r = self.recordings;
        rows.push(row(
            "recordings ready / playable (ffprobe) of calls",
            format!(
                "{} / {} of {} ({} failed, {} unfinished; all settled {:.0} s after the \
                 hang-ups; shortest {})",
                r.ready,
                r.playable,
                r.calls,
                r.failed,
                r.unfinished,
                r.ready_after_secs,
                r.shortest_secs.map_or("—".into(), |s| format!("{s:.0} s")),
            ),
            "all".into(),
        ));
        let end = hold.samples.last().map_or(0, |s| s.rss_bytes);
        let peak = hold.samples.iter().map(|s| s.rss_bytes).max().unwrap_or(0);
        rows.push(row(
            "kefu RSS: hold start / end / peak",
            format!(
                "{:.1} / {:.1} / {:.1} MiB",
                mib(hold.rss_start_bytes),
                mib(end),
                mib(peak)
            ),
            String::new(),
        ));
        let growth = rss_growth(
            &hold.samples,
            self.growth_warmup_secs,
            self.growth_window_secs,
        );
        rows.push(row(
            "kefu RSS growth",
            growth.map_or("— (hold too short)".into(), |(first, last, pct)| {
                format!(
                    "{pct:+.2} % ({:.1} → {:.1} MiB: mean of the first {:.0} s after a {:.0} s \
                     warm-up → of the last {:.0} s)",
                    first / MIB,
                    last / MIB,
                    self.growth_window_secs,
                    self.growth_warmup_secs,
                    self.growth_window_secs
                )
            }),
            format!("flat after warm-up, < {GOAL_GROWTH_PCT} %"),
        ));
        rows.push(row(
            "kefu RSS at 0 calls (after start)",
            format!("{:.1} MiB", mib(self.rss_idle_bytes)),
            String::new(),
        ));
        let marginal = marginal_rss(&self.rss_readings, self.marginal_step);
        rows.push(row(
            "marginal RSS per additional call",
            marginal.map_or("—".into(), |(from, to, per_call)| {
                format!("{per_call:.1} MiB ({from} → {to} calls, settled)")
            }),
            format!("≤ {GOAL_MARGINAL_MIB} MiB"),
        ));
        if let Some(top) = self.rss_readings.iter().max_by_key(|r| r.calls) {
            let per_call =
                (top.bytes as f64 - self.rss_idle_bytes as f64) / top.calls.max(1) as f64 / MIB;
            rows.push(row(
                "RSS per call from 0 calls (incl. one-time costs)",
                format!("{per_call:.1} MiB (0 → {} calls)", top.calls),
                String::new(),
            ));
        }
        let cpu = &hold.cpu;
        rows.push(row(
            "kefu CPU: total / per call",
            format!(
                "{:.2} / {:.3} cores (machine {:.2} of {} cores busy: load generator {:.2}, \
                 other processes {:.2})",
                cpu.process_cores(),
                cpu.process_cores() / calls,
                cpu.machine_cores(),
                self.cores,
                cpu.bench_cores(),
                cpu.machine_cores() - cpu.process_cores() - cpu.bench_cores()
            ),
            String::new(),
        ));
        rows.extend(self.window_rows());
        rows
    }

    fn calls_goal(&self) -> String {
        match self.search {
            Some(_) => "the most that keep the limits".into(),
            None if self.beauty => String::new(),
            None => "20".into(),
        }
    }

    /// The worst windows of the hold.
    fn window_rows(&self) -> Vec<(String, String, String)> {
        let samples = &self.hold.samples;
        let worst = |f: fn(&Sample) -> f64, lowest: bool| {
            samples
                .iter()
                .map(f)
                .filter(|v| !v.is_nan())
                .fold(f64::NAN, |a, b| if lowest { a.min(b) } else { a.max(b) })
        };
        let failing = samples.iter().filter(|s| !s.failures.is_empty()).count();
        let first = samples.first().map(|s| s.gauges).unwrap_or_default();
        let last = samples.last().map(|s| s.gauges).unwrap_or_default();
        vec![
            row(
                "customers' received agent video, worst window (slowest customer)",
                format!("{:.1} fps", worst(|s| s.window.min_customer_fps(), true)),
                "≥ 25 fps".into(),
            ),
            row(
                "forwarding delay p50 / p99, worst window",
                format!(
                    "{:.1} / {:.1} ms",
                    worst(|s| s.window.delay_p50_ms, false),
                    worst(|s| s.window.delay_p99_ms, false)
                ),
                "p99 ≤ 100 ms".into(),
            ),
            row(
                "delivered audio / video, worst window",
                format!(
                    "{:.2} % / {:.2} %",
                    worst(|s| s.window.audio_delivered, true) * 100.0,
                    worst(|s| s.window.video_delivered, true) * 100.0
                ),
                "≥ 99 %".into(),
            ),
            row(
                "windows breaking a limit",
                format!("{failing} of {}", samples.len()),
                "0".into(),
            ),
            row(
                "during the hold: recordings failed / recorder frames dropped / moderation \
                 samples dropped / beauty frames dropped / SFU packets dropped",
                format!(
                    "{:.0} / {:.0} / {:.0} / {:.0} / {:.0}",
                    last.recording_failures - first.recording_failures,
                    last.recording_tap_dropped - first.recording_tap_dropped,
                    last.moderation_samples_dropped - first.moderation_samples_dropped,
                    last.beauty_frames_dropped - first.beauty_frames_dropped,
                    last.sfu_packets_dropped - first.sfu_packets_dropped
                ),
                String::new(),
            ),
            row(
                "running at the end: recordings / screened rooms / beauty pipelines",
                format!(
                    "{:.0} / {:.0} / {:.0}",
                    last.recordings_active, last.moderation_rooms, last.pipelines
                ),
                format!("{} each (pipelines: with beauty)", self.calls),
            ),
            row(
                "moderation actions (test picture: none expected) / videos withheld",
                format!("{:.0} / {}", last.moderation_actions, self.hold.withheld),
                "0".into(),
            ),
        ]
    }

    fn cpu_table(&self, cpu: &CpuSpan) -> String {
        let calls = self.calls.max(1) as f64;
        let mut out = String::from(
            "\nkefu's CPU over the hold by part (thread names; /proc/PID/task):\n\n\
             | part | cores | cores per call | share of kefu |\n|---|---|---|---|\n",
        );
        for component in Component::ALL {
            let cores = cpu.component_cores(component);
            let mut name = component.name().to_owned();
            if component == Component::Other {
                let top: Vec<String> = cpu
                    .top_others(3)
                    .into_iter()
                    .map(|(n, c)| format!("{n} {c:.3}"))
                    .collect();
                if !top.is_empty() {
                    name += &format!(" ({})", top.join(", "));
                }
            }
            let _ = writeln!(
                out,
                "| {name} | {cores:.3} | {:.4} | {:.1} % |",
                cores / calls,
                cores / cpu.process_cores().max(1e-9) * 100.0
            );
        }
        out
    }

    fn saturates_first(&self) -> String {
        let cpu = &self.hold.cpu;
        let (top, cores) = cpu.top_component();
        let (thread, thread_cores) = &cpu.busiest_thread;
        let mut line = format!(
            "within kefu, the {} uses the most CPU ({cores:.2} cores, {:.0} % of kefu's); its \
             busiest thread in any sample was {thread} at {:.0} % of a core",
            top.name(),
            cores / cpu.process_cores().max(1e-9) * 100.0,
            thread_cores * 100.0
        );
        let machine = cpu.machine_cores();
        if machine >= 0.9 * self.cores as f64 {
            line += &format!(
                "; the machine's {} cores were {:.0} % busy (the load generator used {:.2}): \
                 the CPU is what runs out",
                self.cores,
                machine / self.cores as f64 * 100.0,
                cpu.bench_cores()
            );
        }
        let Some(search) = self.search else {
            return line;
        };
        let mut found = format!(
            "--find-max stopped at {}",
            search.stopped_by(self.max_calls)
        );
        if let Some(failed) = search.steps.iter().find(|s| !s.held()) {
            let (top, cores) = failed.cpu.top_component();
            found += &format!(
                " (kefu {:.2} cores there, most in the {} at {cores:.2}; machine {:.2} of {} \
                 cores busy)",
                failed.cpu.process_cores(),
                top.name(),
                failed.cpu.machine_cores(),
                self.cores
            );
        }
        format!("{found}. Over the hold: {line}")
    }
}

fn row(what: &str, value: String, goal: String) -> (String, String, String) {
    (what.to_owned(), value, goal)
}

/// The find-max steps.
fn steps_table(search: &Search) -> String {
    let mut out = String::from(
        "\nSteps of --find-max:\n\n\
         | calls | customers' agent video fps min (agents send) | delay p50 / p99 ms \
         | audio / video delivered | running: recordings / screened / pipelines \
         | kefu cores (top part) | RSS MiB | held |\n\
         |---|---|---|---|---|---|---|---|\n",
    );
    for s in &search.steps {
        let (top, top_cores) = s.cpu.top_component();
        let verdict = if s.held() {
            "yes".to_owned()
        } else {
            format!("**no**: {}", s.failures.join("; "))
        };
        let _ = writeln!(
            out,
            "| {} | {:.1} ({:.1}) | {:.1} / {:.1} | {:.2} % / {:.2} % | {:.0} / {:.0} / {:.0} \
             | {:.2} ({} {:.2}) | {:.1} | {verdict}{} |",
            s.calls,
            s.window.min_customer_fps(),
            s.window.agent_sent_fps,
            s.window.delay_p50_ms,
            s.window.delay_p99_ms,
            s.window.audio_delivered * 100.0,
            s.window.video_delivered * 100.0,
            s.gauges.recordings_active,
            s.gauges.moderation_rooms,
            s.gauges.pipelines,
            s.cpu.process_cores(),
            top.name(),
            top_cores,
            mib(s.rss_bytes),
            if s.attempts > 1 {
                format!(" (window {})", s.attempts)
            } else {
                String::new()
            }
        );
    }
    out
}
