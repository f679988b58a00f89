//! What signaling nodes do when a node goes silent (no heartbeat for
//! `cluster.node_timeout_ms`, e.g. `kill -9` or a machine lost): the calls whose media
//! it held cannot go on, so they end with reason `node_lost` (both pages are told),
//! and the node leaves the registry. The rooms it held stay listed under it: when it
//! comes back, it recovers their recordings from its spool (startup `recover_node`).
//! One signaling node handles each loss (a lease per lost node).

use std::time::Duration;

use kefu_proto::EndReason;
use tracing::{info, warn};

use super::lease::Lease;
use super::redis::{RedisLease, RedisNodes, RedisPlacement};
use crate::accounts::CallId;
use crate::calls::machine::CallEvent;
use crate::state::AppState;

/// Watches the registry every `period` until the task is aborted. A node counts as
/// lost only once Redis has answered for a whole `timeout`: after an outage every
/// entry has expired, and a live node needs a heartbeat to show it is there.
pub async fn watch(
    state: AppState,
    nodes: RedisNodes,
    placement: RedisPlacement,
    lease: RedisLease,
    period: Duration,
    timeout: Duration,
) {
    let mut reachable_since: Option<std::time::Instant> = None;
    loop {
        tokio::time::sleep(period).await;
        let silent = match nodes.view().await {
            Ok(view) => view.silent,
            // Redis away: nothing can be judged; the heartbeats are missing too.
            Err(_) => {
                reachable_since = None;
                continue;
            }
        };
        let since = *reachable_since.get_or_insert_with(std::time::Instant::now);
        if since.elapsed() < timeout {
            continue;
        }
        for node in silent {
            let Ok(_held) = lease.acquire(&format!("node-loss:{node}")).await else {
                continue;
            };
            // Another signaling node may have handled it meanwhile.
            match nodes.view().await {
                Ok(view) if view.silent.contains(&node) => {}
                _ => continue,
            }
            let rooms = match placement.rooms_of(&node).await {
                Ok(rooms) => rooms,
                Err(e) => {
                    warn!(%node, "rooms of a lost node unreadable: {e}");
                    continue;
                }
            };
            let mut ended = 0;
            for room in &rooms {
                let event = CallEvent::Terminate {
                    reason: EndReason::NodeLost,
                };
                if state
                    .calls
                    .apply(&CallId(room.clone()), event, crate::clock::now_ms())
                    .await
                    .is_ok()
                {
                    ended += 1;
                }
            }
            if let Err(e) = nodes.forget(&node).await {
                warn!(%node, "lost node not removed from the registry: {e}");
                continue;
            }
            warn!(%node, calls = ended, "node lost: the calls whose media it held ended");
            info!(%node, rooms = rooms.len(), "its recordings are recovered when it comes back");
        }
    }
}
