//! Reading a recording as a player would: `ffprobe` on the file, its duration and
//! the longest hole in its video (media lost inside a recording shows as a jump in
//! the packets' timestamps).

use std::path::Path;

use anyhow::Context;
use serde_json::Value;

/// `ffprobe`'s JSON for `file` with `args` (e.g. `-show_format`); an error when it
/// cannot read the file.
pub fn ffprobe(file: &Path, args: &[&str]) -> anyhow::Result<Value> {
    let output = std::process::Command::new("ffprobe")
        .args(["-v", "error", "-print_format", "json"])
        .args(args)
        .arg(file)
        .output()
        .context("running ffprobe (deploy/install-deps.sh installs it)")?;
    anyhow::ensure!(
        output.status.success(),
        "ffprobe: {}",
        String::from_utf8_lossy(&output.stderr).trim()
    );
    Ok(serde_json::from_slice(&output.stdout)?)
}

/// What a player finds in a recording.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Timeline {
    pub duration_secs: f64,
    /// The longest step between consecutive video packets, seconds.
    pub longest_video_gap_secs: f64,
    pub video_packets: usize,
}

/// Reads `file` (an MP4 with video and audio) packet by packet.
pub fn timeline(file: &Path) -> anyhow::Result<Timeline> {
    let format = ffprobe(file, &["-show_format", "-show_streams"])?;
    let streams = format["streams"].as_array().cloned().unwrap_or_default();
    let has = |kind: &str| streams.iter().any(|s| s["codec_type"] == kind);
    anyhow::ensure!(
        has("video") && has("audio"),
        "not a video recording with sound"
    );
    let duration_secs = format["format"]["duration"]
        .as_str()
        .and_then(|d| d.parse().ok())
        .context("no duration")?;
    let packets = ffprobe(
        file,
        &["-select_streams", "v:0", "-show_entries", "packet=pts_time"],
    )?;
    let mut times: Vec<f64> = packets["packets"]
        .as_array()
        .map(|ps| {
            ps.iter()
                .filter_map(|p| p["pts_time"].as_str().and_then(|t| t.parse().ok()))
                .collect()
        })
        .unwrap_or_default();
    times.sort_by(f64::total_cmp);
    let longest_video_gap_secs = times.windows(2).map(|w| w[1] - w[0]).fold(0.0, f64::max);
    Ok(Timeline {
        duration_secs,
        longest_video_gap_secs,
        video_packets: times.len(),
    })
}
