//! Driving a face check through the API as the pages do: one JPEG frame at a time,
//! the picture each step asks for, until the attempt ends.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::TestServer;
use crate::faces::{self, FRONTAL, TURNED_LEFT, TURNED_RIGHT};

/// Posts one frame to `path` on `server`; with `device`, as the phone does.
pub async fn post_frame(
    server: &TestServer,
    path: &str,
    bearer: Option<&str>,
    device: Option<&str>,
    body: Vec<u8>,
) -> (StatusCode, Value) {
    let mut req = reqwest::Client::new()
        .post(format!("{}{path}", server.base_url))
        .header("content-type", "image/jpeg")
        .body(body);
    if let Some(t) = bearer {
        req = req.bearer_auth(t);
    }
    if let Some(d) = device {
        req = req.header("x-kefu-device", d);
    }
    let res = req.send().await.expect("frame");
    let status = res.status();
    let text = res.text().await.expect("body");
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

/// Sends frames every 250 ms, showing the turn each step asks for (or `cheat`'s
/// picture instead of every frame when given), each frame to the next of `servers` in
/// turn (a load balancer's round robin); returns the final progress.
pub async fn follow_challenge(
    servers: &[&TestServer],
    path: &str,
    bearer: Option<&str>,
    device: Option<&str>,
    cheat: Option<&str>,
) -> Value {
    let mut progress = json!({"state": "look_at_camera"});
    for n in 0..120 {
        let picture = match (cheat, progress["turn"].as_str()) {
            (Some(name), _) => name,
            (None, Some("turn_left")) => TURNED_LEFT,
            (None, Some("turn_right")) => TURNED_RIGHT,
            (None, _) => FRONTAL,
        };
        let server = servers[n % servers.len()];
        let (status, p) = post_frame(server, path, bearer, device, faces::frame(picture)).await;
        assert_eq!(
            status,
            200,
            "frame {n} through server {}: {p}",
            n % servers.len() + 1
        );
        progress = p;
        if progress["state"] == "passed" || progress["state"] == "failed" {
            return progress;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    panic!("the attempt never ended: {progress}");
}
