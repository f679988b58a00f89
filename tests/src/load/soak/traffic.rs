//! What the calls carry, counted per direction so that what the customers receive of
//! the agents' video can be told apart: a window's forwarding delay, delivery and the
//! frame rate each customer gets of its agent's video.

use std::sync::Arc;
use std::time::Duration;

use crate::load::media::{self, Delivery, Tally};

/// Every tally of a run.
#[derive(Debug)]
pub struct Traffic {
    /// Whether the agents' video is re-encoded (beauty) on its way to the customers.
    pub beauty: bool,
    /// What the agents send and the customers receive: both media, except the
    /// agents' sent video when beauty re-encodes it (it arrives without trailers).
    pub to_customers: Arc<Tally>,
    /// What the customers send and the agents receive.
    pub to_agents: Arc<Tally>,
    /// The agents' sent video under beauty.
    pub agent_video_sent: Arc<Tally>,
}

/// The limits a window must keep.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub delay_p99_ms: f64,
    /// Audio packets and video frames delivered, each (0..1).
    pub delivered: f64,
    /// Frames per second every customer receives of its agent's video.
    pub customer_fps: f64,
}

/// One window's figures.
#[derive(Debug, Clone, Default)]
pub struct WindowStats {
    /// The worse of the two directions (their samples are kept apart): an upper bound
    /// of the whole window's percentile.
    pub delay_p50_ms: f64,
    pub delay_p99_ms: f64,
    pub audio_delivered: f64,
    /// The video forwarded as it is (with beauty: the customers' only).
    pub video_delivered: f64,
    /// Per customer receiving its agent's video, frames per second.
    pub customer_fps: Vec<f64>,
    /// Frames per second each agent sent.
    pub agent_sent_fps: f64,
}

impl WindowStats {
    pub fn min_customer_fps(&self) -> f64 {
        self.customer_fps.iter().copied().fold(f64::NAN, f64::min)
    }

    /// Why the window broke `limits` with `calls` calls (empty: it held).
    pub fn failures(&self, calls: usize, limits: Limits) -> Vec<String> {
        let mut failures = Vec::new();
        let p99 = self.delay_p99_ms;
        if p99.is_nan() || p99 > limits.delay_p99_ms {
            failures.push(format!(
                "delay p99 {p99:.1} ms > {} ms",
                limits.delay_p99_ms
            ));
        }
        for (what, share) in [
            ("audio", self.audio_delivered),
            ("video", self.video_delivered),
        ] {
            if share.is_nan() || share < limits.delivered {
                failures.push(format!(
                    "{what} delivered {:.2} % < {} %",
                    share * 100.0,
                    limits.delivered * 100.0
                ));
            }
        }
        if self.customer_fps.len() < calls {
            failures.push(format!(
                "{} of {calls} customers receive their agent's video",
                self.customer_fps.len()
            ));
        }
        let slowest = self.min_customer_fps();
        if slowest < limits.customer_fps {
            failures.push(format!(
                "customers' agent video {slowest:.1} fps < {} fps",
                limits.customer_fps
            ));
        }
        failures
    }
}

impl Traffic {
    pub fn new(beauty: bool) -> Self {
        Self {
            beauty,
            to_customers: Arc::default(),
            to_agents: Arc::default(),
            agent_video_sent: Arc::default(),
        }
    }

    fn tallies(&self) -> [&Arc<Tally>; 3] {
        [&self.to_customers, &self.to_agents, &self.agent_video_sent]
    }

    /// Received streams with at least 50 packets so far (four per call once it runs).
    pub fn streams_flowing(&self) -> usize {
        self.to_customers.streams_receiving(50) + self.to_agents.streams_receiving(50)
    }

    /// Measures a window of `length`: what is sent in it, and what of that arrives
    /// within a second after it (frames sent at its end are still on their way).
    pub async fn window(&self, length: Duration, calls: usize) -> WindowStats {
        for tally in self.tallies() {
            tally.reset();
        }
        let opened = media::now_us();
        for tally in self.tallies() {
            tally.window.open(opened);
        }
        tokio::time::sleep(length).await;
        let closed = media::now_us();
        for tally in self.tallies() {
            tally.window.close(closed);
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
        self.read((closed - opened) as f64 / 1e6, calls)
    }

    fn read(&self, secs: f64, calls: usize) -> WindowStats {
        let (down, up) = (self.to_customers.delivery(), self.to_agents.delivery());
        let worse = |f: fn(&Delivery) -> f64| {
            [f(&down), f(&up)]
                .into_iter()
                .filter(|v| !v.is_nan())
                .fold(f64::NAN, f64::max)
        };
        let customer_fps = if self.beauty {
            self.to_customers
                .plain_video_frames()
                .into_iter()
                .map(|frames| frames as f64 / secs)
                .collect()
        } else {
            // Forwarded as is: a customer's frames of the agent's video are the
            // video stream's delay samples (a frame sent and received in the window).
            // A stream without any is missing from the count, as a call that stalled
            // or one hung up earlier is.
            self.to_customers
                .stream_delays()
                .into_iter()
                .filter(|s| !s.audio && s.samples > 0)
                .map(|s| s.samples as f64 / secs)
                .collect()
        };
        let agent_video = if self.beauty {
            self.agent_video_sent.delivery()
        } else {
            down
        };
        WindowStats {
            delay_p50_ms: worse(|d| d.delay_p50_ms),
            delay_p99_ms: worse(|d| d.delay_p99_ms),
            audio_delivered: ratio(
                down.received_audio + up.received_audio,
                down.sent_audio + up.sent_audio,
            ),
            video_delivered: ratio(
                down.received_video_frames + up.received_video_frames,
                down.sent_video_frames + up.sent_video_frames,
            ),
            customer_fps,
            agent_sent_fps: agent_video.sent_video_frames as f64 / secs / calls.max(1) as f64,
        }
    }
}

/// `a / b`; NaN when nothing was sent.
fn ratio(a: u64, b: u64) -> f64 {
    if b == 0 {
        f64::NAN
    } else {
        a as f64 / b as f64
    }
}
