//! A node's heartbeat: every `cluster.heartbeat_ms` it writes its registry entry with
//! its load (so calls are placed by it) and learns whether an operator asked it to
//! drain. A Redis outage is logged once when it starts and once when it ends; the
//! entry simply expires meanwhile.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use tokio::sync::Notify;
use tracing::{info, warn};

use super::nodes::{NodeInfo, NodeLoad};
use super::redis::RedisNodes;

/// The fixed part of a node's entry.
#[derive(Debug, Clone)]
pub struct NodeIdentity {
    pub id: String,
    pub role: &'static str,
    pub internal_url: String,
}

/// Beats until the task is aborted. `load` reads what runs here (the CPU figure is
/// measured here); `drain` is notified once when a drain is requested. `draining`
/// (set here on a request, or by the node's own shutdown) is what the entry says, so
/// no new call is placed on a draining node.
pub async fn run(
    nodes: RedisNodes,
    identity: NodeIdentity,
    period: Duration,
    load: impl Fn() -> NodeLoad + Send + 'static,
    drain: Arc<Notify>,
    draining: Arc<AtomicBool>,
) {
    let cores = std::thread::available_parallelism()
        .map(|n| u32::try_from(n.get()).unwrap_or(u32::MAX))
        .unwrap_or(1);
    let mut last = (Instant::now(), kefu_proto::process::cpu_seconds());
    let mut asked_before = false;
    let mut failing = false;
    // A drain request left from before this process started is not for it; until
    // it is cleared, none counts.
    let mut cleared = false;
    loop {
        if !cleared {
            cleared = nodes.clear_drain(&identity.id).await.is_ok();
        }
        let now = (Instant::now(), kefu_proto::process::cpu_seconds());
        let wall = now.0.duration_since(last.0).as_secs_f64();
        let cpu_cores = if wall > 0.0 {
            (now.1 - last.1).max(0.0) / wall
        } else {
            0.0
        };
        last = now;
        let info = NodeInfo {
            id: identity.id.clone(),
            role: identity.role.to_owned(),
            internal_url: identity.internal_url.clone(),
            draining: draining.load(Ordering::SeqCst),
            load: NodeLoad {
                cpu_cores,
                cores,
                ..load()
            },
            version: env!("CARGO_PKG_VERSION").to_owned(),
            seen_ms: crate::clock::now_ms(),
        };
        match nodes.heartbeat(&info).await {
            Ok(asked) => {
                if failing {
                    info!("cluster registry reachable again");
                    failing = false;
                }
                if asked && cleared && !asked_before {
                    info!(node = %identity.id, "drain requested");
                    asked_before = true;
                    draining.store(true, Ordering::SeqCst);
                    drain.notify_one();
                }
            }
            Err(e) => {
                if !failing {
                    warn!("cluster registry unreachable: {e}");
                    failing = true;
                }
            }
        }
        tokio::time::sleep(period).await;
    }
}
