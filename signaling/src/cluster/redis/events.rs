//! Call changes across nodes: a page's event channel (`/ws/events`) lives on one
//! signaling node while the change may happen on another. Every change a node makes
//! is published on `<prefix>:calls` (the call id, the event, when, which node); every
//! other node reads the call from the database and tells its own listeners. Changes
//! published while Redis is away are lost; the pages' next snapshot catches up.

use std::sync::Arc;

use redis::AsyncCommands;
use serde::{Deserialize, Serialize};
use tokio::sync::broadcast::error::RecvError;
use tracing::{debug, warn};

use super::{RedisCluster, unavailable};
use crate::accounts::CallId;
use crate::calls::lifecycle::CallDriver;
use crate::store::Store;

/// The names a change may carry (the call log's), so a relayed one keeps its own.
const EVENT_NAMES: &[&str] = &[
    "assigned",
    "reoffer",
    "customer_opened",
    "accept",
    "reject",
    "cancel",
    "media_up",
    "hang_up",
    "ring_timeout",
    "fail",
    "terminate",
    "agent_call",
    "customer_request",
];

#[derive(Debug, Serialize, Deserialize)]
struct Change {
    call: String,
    event: String,
    at: i64,
    node: String,
}

/// Starts relaying this node's changes out and other nodes' changes in.
pub fn relay_call_events(redis: RedisCluster, calls: CallDriver, store: Store) -> RelayTasks {
    let outward = tokio::spawn(publish_ours(redis.clone(), calls.clone()));
    let inward = tokio::spawn(listen(redis, calls, store));
    RelayTasks::new(outward, inward)
}

/// The relay's tasks; they stop when the last handle drops.
#[derive(Debug, Clone)]
pub struct RelayTasks(Arc<(tokio::task::JoinHandle<()>, tokio::task::JoinHandle<()>)>);

impl RelayTasks {
    pub(crate) fn new(
        outward: tokio::task::JoinHandle<()>,
        inward: tokio::task::JoinHandle<()>,
    ) -> Self {
        Self(Arc::new((outward, inward)))
    }
}

impl Drop for RelayTasks {
    fn drop(&mut self) {
        if Arc::strong_count(&self.0) == 1 {
            self.0.0.abort();
            self.0.1.abort();
        }
    }
}

async fn publish_ours(redis: RedisCluster, calls: CallDriver) {
    let mut changes = calls.subscribe();
    let channel = redis.key(&["calls"]);
    loop {
        let change = match changes.recv().await {
            Ok(change) => change,
            Err(RecvError::Lagged(n)) => {
                warn!(
                    missed = n,
                    "call changes not relayed (this node was behind)"
                );
                continue;
            }
            Err(RecvError::Closed) => return,
        };
        if change.relayed {
            continue;
        }
        let message = Change {
            call: change.call.id.0.clone(),
            event: change.event.to_owned(),
            at: change.at,
            node: redis.node().to_owned(),
        };
        let Ok(json) = serde_json::to_string(&message) else {
            continue;
        };
        if let Err(e) = redis
            .conn()
            .publish::<_, _, i64>(&channel, json)
            .await
            .map_err(unavailable)
        {
            warn!("call change not relayed: {e}");
        }
    }
}

async fn listen(redis: RedisCluster, calls: CallDriver, store: Store) {
    let channel = redis.key(&["calls"]);
    let me = redis.node().to_owned();
    super::subscribe::listen(redis, channel, "call changes", None, |payload: String| {
        let (calls, store, me) = (calls.clone(), store.clone(), me.clone());
        async move {
            match serde_json::from_str::<Change>(&payload) {
                Ok(change) if change.node != me => tell_ours(&calls, &store, change).await,
                Ok(_) => {}
                Err(e) => warn!("unreadable call change: {e}"),
            }
        }
    })
    .await;
}

async fn tell_ours(calls: &CallDriver, store: &Store, change: Change) {
    let event = EVENT_NAMES
        .iter()
        .find(|name| **name == change.event)
        .copied()
        .unwrap_or("changed");
    match store.call(&CallId(change.call.clone())).await {
        Ok(Some(call)) => calls.publish_relayed(&call, event, change.at),
        Ok(None) => debug!(call = %change.call, "relayed change of an unknown call"),
        Err(e) => warn!(call = %change.call, "relayed change unreadable: {e}"),
    }
}
