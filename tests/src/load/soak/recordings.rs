//! After the hang-ups: every call's recording should reach `ready`; each ready one is
//! downloaded through the product's link and read by `ffprobe` (an MP4 with a video
//! stream and a duration), as the browser suite checks a recording.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::Context;
use reqwest::Method;
use serde_json::Value;

use super::server::SoakServer;

/// What came of the calls' recordings.
#[derive(Debug, Clone, Default)]
pub struct RecordingCheck {
    /// Calls whose recordings were looked for.
    pub calls: usize,
    pub ready: usize,
    pub playable: usize,
    pub failed: usize,
    /// Still recording or processing at the deadline, or never listed.
    pub unfinished: usize,
    /// The shortest playable recording, seconds (as ffprobe reads it).
    pub shortest_secs: Option<f64>,
    pub bytes: u64,
    /// Seconds from the last hang-up until the last recording was ready.
    pub ready_after_secs: f64,
    /// One line per recording that is not ready and playable.
    pub problems: Vec<String>,
}

/// Waits (at most `timeout`) for the recordings of `call_ids` as the admin `boss`
/// sees them, then probes each ready one (downloaded into `dir`, deleted after).
pub async fn check(
    server: &SoakServer,
    boss: &str,
    call_ids: &[String],
    timeout: Duration,
    dir: &Path,
) -> anyhow::Result<RecordingCheck> {
    let mut check = RecordingCheck {
        calls: call_ids.len(),
        ..RecordingCheck::default()
    };
    let hung_up = Instant::now();
    let deadline = hung_up + timeout;
    let mut finished: Vec<Value> = Vec::new();
    let mut waiting: Vec<&String> = call_ids.iter().collect();
    while !waiting.is_empty() {
        let mut still = Vec::new();
        for call in waiting {
            match settled_recording(server, boss, call).await? {
                Some(recording) => finished.push(recording),
                None => still.push(call),
            }
        }
        waiting = still;
        if waiting.is_empty() || Instant::now() >= deadline {
            break;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    check.ready_after_secs = hung_up.elapsed().as_secs_f64();
    for call in waiting {
        check.unfinished += 1;
        check.problems.push(format!(
            "call {call}: no ready or failed recording after {timeout:?}"
        ));
    }
    for recording in finished {
        let id = recording["id"].as_str().unwrap_or("?");
        if recording["state"] != "ready" {
            check.failed += 1;
            check.problems.push(format!(
                "recording {id}: {} ({} {})",
                recording["state"], recording["failure_kind"], recording["failure_reason"]
            ));
            continue;
        }
        check.ready += 1;
        match probe(server, boss, id, dir).await {
            Ok((secs, bytes)) => {
                check.playable += 1;
                check.bytes += bytes;
                check.shortest_secs = Some(check.shortest_secs.map_or(secs, |s| s.min(secs)));
            }
            Err(e) => check.problems.push(format!("recording {id}: {e:#}")),
        }
    }
    Ok(check)
}

/// The call's recording once it is ready or failed; `None` while it is not (or not
/// listed yet).
async fn settled_recording(
    server: &SoakServer,
    boss: &str,
    call: &str,
) -> anyhow::Result<Option<Value>> {
    let list = server
        .api_expect(
            200,
            Method::GET,
            &format!("/api/v1/recordings?call_id={call}"),
            Some(boss),
            None,
        )
        .await?;
    let recording = list.as_array().and_then(|l| l.first()).cloned();
    Ok(recording.filter(|r| r["state"] == "ready" || r["state"] == "failed"))
}

/// Downloads recording `id` and reads it with ffprobe: its duration in seconds and
/// its size, or why it is not playable.
async fn probe(
    server: &SoakServer,
    boss: &str,
    id: &str,
    dir: &Path,
) -> anyhow::Result<(f64, u64)> {
    let link = server
        .api_expect(
            200,
            Method::POST,
            &format!("/api/v1/recordings/{id}/download"),
            Some(boss),
            None,
        )
        .await?;
    let url = link["url"].as_str().context("no download link")?;
    let body = server.download(url).await?;
    let file = dir.join(format!("{id}.mp4"));
    std::fs::write(&file, &body)?;
    let probed = {
        let file = file.clone();
        tokio::task::spawn_blocking(move || {
            crate::media_probe::ffprobe(&file, &["-show_format", "-show_streams"])
        })
        .await?
    };
    let _ = std::fs::remove_file(&file);
    let probe = probed?;
    let format = probe["format"]["format_name"].as_str().unwrap_or("");
    anyhow::ensure!(format.contains("mp4"), "not an MP4: {format:?}");
    let streams = probe["streams"].as_array().cloned().unwrap_or_default();
    let has = |kind: &str| streams.iter().any(|s| s["codec_type"] == kind);
    anyhow::ensure!(has("video"), "no video stream");
    anyhow::ensure!(has("audio"), "no audio stream");
    let secs: f64 = probe["format"]["duration"]
        .as_str()
        .and_then(|d| d.parse().ok())
        .unwrap_or(0.0);
    anyhow::ensure!(secs > 0.0, "no duration");
    Ok((secs, body.len() as u64))
}
