//! What kefu's /metrics says about the calls' parts: that every call is really
//! recorded, screened and (with beauty) re-encoded, and what any of them dropped.

use super::server::SoakServer;

/// The gauges and counters of one /metrics read (counters: totals so far).
#[derive(Debug, Clone, Copy, Default)]
pub struct ServerGauges {
    pub pipelines: f64,
    pub recordings_active: f64,
    pub moderation_rooms: f64,
    pub beauty_frames_dropped: f64,
    pub recording_tap_dropped: f64,
    pub recording_failures: f64,
    pub moderation_samples_dropped: f64,
    pub moderation_actions: f64,
    pub sfu_packets_dropped: f64,
}

impl ServerGauges {
    pub async fn read(server: &SoakServer) -> anyhow::Result<Self> {
        let text = server.metrics().await?;
        let sum = |name: &str| metric_sum(&text, name);
        Ok(Self {
            pipelines: sum("kefu_beauty_pipelines"),
            recordings_active: sum("kefu_recordings_active"),
            moderation_rooms: sum("kefu_moderation_rooms"),
            beauty_frames_dropped: sum("kefu_beauty_frames_dropped"),
            recording_tap_dropped: sum("kefu_recording_tap_dropped"),
            recording_failures: sum("kefu_recording_failures"),
            moderation_samples_dropped: sum("kefu_moderation_samples_dropped"),
            moderation_actions: sum("kefu_moderation_actions"),
            sfu_packets_dropped: sum("kefu_sfu_packets_dropped"),
        })
    }

    /// Whether every one of `calls` calls has its parts running.
    pub fn all_running(&self, calls: usize, beauty: bool) -> bool {
        let calls = calls as f64;
        self.recordings_active >= calls
            && self.moderation_rooms >= calls
            && (!beauty || self.pipelines >= calls)
    }
}

/// The sum of every sample of `name` (any labels; a counter's `_total` too).
fn metric_sum(text: &str, name: &str) -> f64 {
    text.lines()
        .filter(|line| !line.starts_with('#'))
        .filter_map(|line| {
            let rest = line.strip_prefix(name)?;
            let rest = rest.strip_prefix("_total").unwrap_or(rest);
            let value = match rest.chars().next()? {
                '{' => rest.rsplit_once('}')?.1,
                ' ' => rest,
                _ => return None,
            };
            value.split_whitespace().next()?.parse::<f64>().ok()
        })
        // Not `sum()`: that starts at -0.0, which prints as "-0".
        .fold(0.0, |total, v| total + v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sums_labelled_samples_and_counter_totals_only_of_that_name() {
        let text = "# HELP kefu_x things\n\
                    kefu_x{side=\"agent\"} 2\n\
                    kefu_x{side=\"customer\"} 3\n\
                    kefu_x_total 4\n\
                    kefu_x_seconds_sum 100\n\
                    kefu_y 7\n";
        assert_eq!(metric_sum(text, "kefu_x"), 9.0);
        assert_eq!(metric_sum(text, "kefu_y"), 7.0);
        assert_eq!(metric_sum(text, "kefu_z"), 0.0);
    }
}
