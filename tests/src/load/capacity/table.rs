//! A series' steps as Markdown, and its one-line result.

use super::StepReport;

/// A Markdown table of one series' steps.
pub fn markdown(steps: &[StepReport], beauty: bool) -> String {
    let mut out = String::from(
        "| calls | delay p50 / p99 ms | audio / video delivered | beautified fps min / mean \
         | pipelines: frames in/s, dropped, mean latency ms | media node cores | cores per call \
         | media node peak RSS MiB | bench process cores (max stall ms) | other processes cores \
         | streams over the p99 limit | UDP drops: media node / load gen | held |\n\
         |---|---|---|---|---|---|---|---|---|---|---|---|---|\n",
    );
    for s in steps {
        let (fps, pipelines) = if beauty {
            let mean = s.beautified_fps.iter().sum::<f64>() / s.beautified_fps.len().max(1) as f64;
            let min = s.beautified_fps.iter().copied().fold(f64::NAN, f64::min);
            (
                format!("{min:.1} / {mean:.1} (agents send {:.1})", s.agent_fps),
                format!(
                    "{:.0}: {:.0} /s, {:.0}, {:.1}",
                    s.pipelines, s.pipeline_fps, s.pipeline_dropped, s.pipeline_latency_ms
                ),
            )
        } else {
            ("—".into(), format!("{:.0}", s.pipelines))
        };
        let mut verdict = if s.held() {
            "yes".to_owned()
        } else {
            format!("**no**: {}", s.failures.join("; "))
        };
        if s.attempts > 1 {
            verdict += &format!(" (window {})", s.attempts);
        }
        let audio = s.slow_streams.iter().filter(|d| d.audio).count();
        let slow = format!(
            "{} of {} ({audio} audio)",
            s.slow_streams.len(),
            s.measured_streams
        );
        out += &format!(
            "| {} | {:.2} / {:.2} | {:.2} % / {:.2} % | {fps} | {pipelines} | {:.3} | {:.3} | {:.1} \
             | {:.2} ({:.0}) | {:.2} | {slow} | {} / {} | {verdict} |\n",
            s.calls,
            s.delivery.delay_p50_ms,
            s.delivery.delay_p99_ms,
            s.audio_delivered() * 100.0,
            s.video_delivered() * 100.0,
            s.media_cores,
            s.media_cores / s.calls.max(1) as f64,
            s.media_peak_rss_mib,
            s.bench_cores,
            s.bench_lag_ms,
            s.other_cores(),
            s.media_udp_drops,
            s.other_udp_drops,
        );
    }
    out
}

/// One line: the largest step that held, and the first that did not.
pub fn summary(name: &str, steps: &[StepReport], cap: usize) -> String {
    let held = steps.iter().take_while(|s| s.held()).last();
    let failed = steps.iter().find(|s| !s.held());
    let mut line = match held {
        Some(s) => format!(
            "{name}: **{} calls** held (delay p99 {:.1} ms; media node {:.2} cores, {:.3} cores per call)",
            s.calls,
            s.delivery.delay_p99_ms,
            s.media_cores,
            s.media_cores / s.calls.max(1) as f64
        ),
        None => format!("{name}: no step held"),
    };
    match failed {
        Some(f) => line += &format!("; {} calls failed: {}", f.calls, f.failures.join("; ")),
        None => line += &format!("; the --max-calls cap ({cap}) was reached, not the limit"),
    }
    line
}
