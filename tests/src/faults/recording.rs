//! A call's recording after a fault, read as an admin and a player would: its state,
//! then the file downloaded through the product's link and read by ffprobe.

use std::time::Duration;

use serde_json::Value;

use crate::TestServer;
use crate::media_probe::{Timeline, timeline};

/// How a call's recording came out.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// `ready`, `failed`, or what it still was at the deadline.
    pub state: String,
    pub timeline: Option<Timeline>,
    /// The call's connected time, from its view (seconds).
    pub call_secs: f64,
    pub size_bytes: u64,
    pub why: String,
}

impl Outcome {
    pub fn lost(&self) -> bool {
        self.state != "ready" || self.timeline.is_none()
    }

    /// Media missing: the connected time the file lacks, or its longest hole.
    pub fn media_lost_secs(&self) -> f64 {
        match self.timeline {
            Some(t) => (self.call_secs - t.duration_secs)
                .max(t.longest_video_gap_secs)
                .max(0.0),
            None => self.call_secs,
        }
    }
}

/// The recording of `call` once it is ready or failed (waiting at most `timeout`),
/// downloaded and probed. `boss` is an admin of the call's enterprise.
pub async fn settle(server: &TestServer, call: &str, boss: &str, timeout: Duration) -> Outcome {
    let view = server.call_view(call, boss).await;
    let call_secs = match (view["connected_at"].as_i64(), view["ended_at"].as_i64()) {
        (Some(from), Some(to)) => (to - from) as f64 / 1000.0,
        _ => 0.0,
    };
    let deadline = tokio::time::Instant::now() + timeout;
    let recording = loop {
        let list = server.recordings_of(call, boss).await;
        let first = list.as_array().and_then(|l| l.first()).cloned();
        let settled = first
            .as_ref()
            .is_some_and(|r| r["state"] == "ready" || r["state"] == "failed");
        if settled || tokio::time::Instant::now() >= deadline {
            break first.unwrap_or(Value::Null);
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    let state = recording["state"].as_str().unwrap_or("missing").to_owned();
    let mut outcome = Outcome {
        state,
        timeline: None,
        call_secs,
        size_bytes: recording["size_bytes"].as_u64().unwrap_or(0),
        why: format!(
            "{} {}",
            recording["failure_kind"], recording["failure_reason"]
        ),
    };
    if outcome.state == "ready" {
        let id = recording["id"].as_str().unwrap_or_default();
        match probe(server, id, boss).await {
            Ok(t) => outcome.timeline = Some(t),
            Err(e) => outcome.why = format!("{e:#}"),
        }
    }
    outcome
}

async fn probe(server: &TestServer, id: &str, boss: &str) -> anyhow::Result<Timeline> {
    let (status, link) = server
        .post(
            &format!("/api/v1/recordings/{id}/download"),
            Some(boss),
            None,
        )
        .await;
    anyhow::ensure!(status == 200, "download link: {status} {link}");
    let url = link["url"].as_str().unwrap_or_default();
    let url = if url.starts_with("http") {
        url.to_owned()
    } else {
        format!("{}{url}", server.base_url)
    };
    let body = reqwest::get(&url)
        .await?
        .error_for_status()?
        .bytes()
        .await?;
    let dir = tempfile::tempdir()?;
    let file = dir.path().join(format!("{id}.mp4"));
    std::fs::write(&file, &body)?;
    tokio::task::spawn_blocking(move || timeline(&file)).await?
}
