//! Test harness: an in-process kefu on free loopback ports, a signaling client, and an
//! independent WebRTC client (webrtc-rs) that publishes synthetic Opus + VP8.

pub mod cluster;
pub mod coturn;
pub mod face_check;
pub mod faces;
pub mod faults;
pub mod http;
pub mod load;
pub mod media_probe;
pub mod netem_relay;
pub mod scenario;
pub mod server;
pub mod signaling;
pub mod webrtc_client;

pub use server::{TestServer, spawn_app, spawn_app_in, spawn_app_with, spawn_node};
pub use signaling::SignalingClient;
pub use webrtc_client::{RtcClient, running_call};

use std::time::Duration;

/// Polls `check` until it yields `Some`, or fails with `what` after `timeout`.
pub async fn wait_until<T, F, Fut>(what: &str, timeout: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if let Some(v) = check().await {
            return v;
        }
        if tokio::time::Instant::now() >= deadline {
            panic!("timed out after {timeout:?} waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
