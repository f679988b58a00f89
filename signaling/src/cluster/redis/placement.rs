//! Which media node holds a room: `<prefix>:room-node:<room>` → node id, set once
//! with `SET NX` (two signaling nodes placing the same room agree on the first), and
//! `<prefix>:node:<id>:rooms`, the rooms a node holds (what to end if it dies, what
//! to recover when it comes back). A room is placed on the live media node
//! [`choose_media_node`] picks, when its first participant's media arrives.

use std::time::Duration;

use redis::AsyncCommands;

use super::nodes::RedisNodes;
use super::{RedisCluster, unavailable};
use crate::cluster::ClusterError;
use crate::cluster::nodes::{NodeInfo, choose_media_node};

/// A placement outlives its call by this much at most (a call ends long before).
const PLACEMENT_TTL: Duration = Duration::from_secs(24 * 3600);

#[derive(Debug, Clone)]
pub struct RedisPlacement {
    redis: RedisCluster,
    nodes: RedisNodes,
}

impl RedisPlacement {
    pub fn new(redis: RedisCluster, nodes: RedisNodes) -> Self {
        Self { redis, nodes }
    }

    fn room_key(&self, room: &str) -> String {
        self.redis.key(&["room-node", room])
    }

    fn rooms_key(&self, node: &str) -> String {
        self.redis.key(&["node", node, "rooms"])
    }

    /// The live media node holding `room`, placing it first if nobody has.
    pub async fn node_for(&self, room: &str) -> Result<NodeInfo, ClusterError> {
        let mut conn = self.redis.conn();
        for _ in 0..2 {
            let view = self.nodes.view().await?;
            let held: Option<String> = conn.get(self.room_key(room)).await.map_err(unavailable)?;
            if let Some(id) = held {
                return view
                    .live
                    .into_iter()
                    .map(|(n, _)| n)
                    .find(|n| n.id == id)
                    .ok_or_else(|| ClusterError::Unavailable(format!("media node {id} is gone")));
            }
            let node = choose_media_node(&view.live)
                .cloned()
                .ok_or_else(|| ClusterError::Unavailable("no media node is live".into()))?;
            let ms = u64::try_from(PLACEMENT_TTL.as_millis()).unwrap_or(u64::MAX);
            let opts = redis::SetOptions::default()
                .conditional_set(redis::ExistenceCheck::NX)
                .with_expiration(redis::SetExpiry::PX(ms));
            let placed: Option<String> = conn
                .set_options(self.room_key(room), &node.id, opts)
                .await
                .map_err(unavailable)?;
            if placed.is_some() {
                conn.sadd::<_, _, ()>(self.rooms_key(&node.id), room)
                    .await
                    .map_err(unavailable)?;
                self.nodes.note_placed(&node.id).await?;
                return Ok(node);
            }
            // Another node placed it meanwhile: use its choice.
        }
        Err(ClusterError::Unavailable(format!(
            "room {room} could not be placed"
        )))
    }

    /// The live node holding `room`, if it is placed.
    pub async fn node_of(&self, room: &str) -> Result<Option<NodeInfo>, ClusterError> {
        let held: Option<String> = self
            .redis
            .conn()
            .get(self.room_key(room))
            .await
            .map_err(unavailable)?;
        let Some(id) = held else { return Ok(None) };
        Ok(self
            .nodes
            .view()
            .await?
            .live
            .into_iter()
            .map(|(n, _)| n)
            .find(|n| n.id == id))
    }

    /// The room is over: it is held nowhere any more.
    pub async fn release(&self, room: &str) -> Result<(), ClusterError> {
        let mut conn = self.redis.conn();
        let held: Option<String> = conn.get(self.room_key(room)).await.map_err(unavailable)?;
        let mut pipe = redis::pipe();
        pipe.del(self.room_key(room)).ignore();
        if let Some(id) = held {
            pipe.srem(self.rooms_key(&id), room).ignore();
        }
        pipe.query_async::<()>(&mut conn).await.map_err(unavailable)
    }

    /// The rooms `node` holds (or held when it died).
    pub async fn rooms_of(&self, node: &str) -> Result<Vec<String>, ClusterError> {
        self.redis
            .conn()
            .smembers(self.rooms_key(node))
            .await
            .map_err(unavailable)
    }
}
