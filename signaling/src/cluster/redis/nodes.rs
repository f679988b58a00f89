//! The node registry in Redis. Each node writes `<prefix>:node:<id>` (its
//! [`NodeInfo`] as JSON) with an expiry of `node_timeout_ms` on every heartbeat and
//! adds its id to the set `<prefix>:nodes`; an id in the set whose entry expired is a
//! node that went silent. `<prefix>:node:<id>:drain` asks a node to drain;
//! `<prefix>:node:<id>:placed` counts calls placed there since its last heartbeat.

use std::time::Duration;

use redis::AsyncCommands;

use super::{RedisCluster, unavailable};
use crate::cluster::ClusterError;
use crate::cluster::nodes::NodeInfo;

/// The registry as one read saw it.
#[derive(Debug, Clone, Default)]
pub struct ClusterView {
    /// Live nodes, each with the calls placed there since its heartbeat.
    pub live: Vec<(NodeInfo, u32)>,
    /// Registered nodes whose entry expired: silent past `node_timeout_ms`.
    pub silent: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct RedisNodes {
    redis: RedisCluster,
    timeout: Duration,
}

impl RedisNodes {
    pub fn new(redis: RedisCluster, timeout: Duration) -> Self {
        Self { redis, timeout }
    }

    fn node_key(&self, id: &str, part: Option<&str>) -> String {
        match part {
            Some(part) => self.redis.key(&["node", id, part]),
            None => self.redis.key(&["node", id]),
        }
    }

    /// The Redis handle this registry uses.
    pub fn redis(&self) -> &RedisCluster {
        &self.redis
    }

    /// Writes `info` as this node's entry; returns whether it was asked to drain.
    pub async fn heartbeat(&self, info: &NodeInfo) -> Result<bool, ClusterError> {
        let json = serde_json::to_string(info)
            .map_err(|e| ClusterError::Corrupt(format!("node entry: {e}")))?;
        let ms = u64::try_from(self.timeout.as_millis())
            .unwrap_or(u64::MAX)
            .max(1);
        let (drain,): (bool,) = redis::pipe()
            .atomic()
            .set_options(
                self.node_key(&info.id, None),
                json,
                redis::SetOptions::default().with_expiration(redis::SetExpiry::PX(ms)),
            )
            .ignore()
            .sadd(self.redis.key(&["nodes"]), &info.id)
            .ignore()
            .del(self.node_key(&info.id, Some("placed")))
            .ignore()
            .exists(self.node_key(&info.id, Some("drain")))
            .query_async(&mut self.redis.conn())
            .await
            .map_err(unavailable)?;
        Ok(drain)
    }

    /// Every registered node: live ones with their entries, silent ones by id.
    pub async fn view(&self) -> Result<ClusterView, ClusterError> {
        let mut conn = self.redis.conn();
        let mut ids: Vec<String> = conn
            .smembers(self.redis.key(&["nodes"]))
            .await
            .map_err(unavailable)?;
        ids.sort();
        if ids.is_empty() {
            return Ok(ClusterView::default());
        }
        let entries: Vec<Option<String>> = conn
            .mget(
                ids.iter()
                    .map(|id| self.node_key(id, None))
                    .collect::<Vec<_>>(),
            )
            .await
            .map_err(unavailable)?;
        let placed: Vec<Option<u32>> = conn
            .mget(
                ids.iter()
                    .map(|id| self.node_key(id, Some("placed")))
                    .collect::<Vec<_>>(),
            )
            .await
            .map_err(unavailable)?;
        let mut view = ClusterView::default();
        for ((id, entry), placed) in ids.into_iter().zip(entries).zip(placed) {
            match entry.map(|e| serde_json::from_str::<NodeInfo>(&e)) {
                Some(Ok(info)) => view.live.push((info, placed.unwrap_or(0))),
                // An entry another version wrote: not a node we can place calls on.
                Some(Err(e)) => tracing::warn!(node = %id, "unreadable registry entry: {e}"),
                None => view.silent.push(id),
            }
        }
        Ok(view)
    }

    /// Counts a call placed on `id` until its next heartbeat reports it.
    pub async fn note_placed(&self, id: &str) -> Result<(), ClusterError> {
        let key = self.node_key(id, Some("placed"));
        let ms = u64::try_from(self.timeout.as_millis())
            .unwrap_or(u64::MAX)
            .max(1);
        redis::pipe()
            .incr(&key, 1)
            .ignore()
            .pexpire(&key, i64::try_from(ms).unwrap_or(i64::MAX))
            .ignore()
            .query_async::<()>(&mut self.redis.conn())
            .await
            .map_err(unavailable)
    }

    /// Asks node `id` to drain (`kefu admin drain`); false when no such node is
    /// registered.
    pub async fn request_drain(&self, id: &str) -> Result<bool, ClusterError> {
        let mut conn = self.redis.conn();
        let known: bool = conn
            .sismember(self.redis.key(&["nodes"]), id)
            .await
            .map_err(unavailable)?;
        if known {
            conn.set::<_, _, ()>(self.node_key(id, Some("drain")), 1)
                .await
                .map_err(unavailable)?;
        }
        Ok(known)
    }

    /// A node starting afresh: an old drain request was for the process before it.
    pub async fn clear_drain(&self, id: &str) -> Result<(), ClusterError> {
        self.redis
            .conn()
            .del::<_, ()>(self.node_key(id, Some("drain")))
            .await
            .map_err(unavailable)
    }

    /// Removes a node from the registry (it left, or its loss was handled).
    pub async fn forget(&self, id: &str) -> Result<(), ClusterError> {
        redis::pipe()
            .srem(self.redis.key(&["nodes"]), id)
            .ignore()
            .del(self.node_key(id, None))
            .ignore()
            .del(self.node_key(id, Some("placed")))
            .ignore()
            .del(self.node_key(id, Some("drain")))
            .ignore()
            .query_async::<()>(&mut self.redis.conn())
            .await
            .map_err(unavailable)
    }
}
