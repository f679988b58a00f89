//! The Redis side of the cluster seams. One multiplexed connection per node
//! ([`ConnectionManager`] reconnects by itself after an outage); every command has a
//! deadline, so while Redis is away requests are refused quickly instead of hanging.
//! Keys all start with `cluster.key_prefix`; docs/cluster.md lists them.

mod attempt_results;
mod events;
mod forward;
mod lease;
mod limiter;
mod links;
mod nodes;
mod placement;
mod previews;
mod rooms;
mod subscribe;

pub use attempt_results::relay_attempt_results;
pub use events::{RelayTasks, relay_call_events};
pub use forward::RedisForwarder;
pub use lease::RedisLease;
pub use limiter::RedisLimiter;
pub use links::RedisLinks;
pub use nodes::{ClusterView, RedisNodes};
pub use placement::RedisPlacement;
pub use previews::RedisPreviews;
pub use rooms::RedisRooms;

use std::fmt;
use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use secrecy::ExposeSecret;

use super::ClusterError;
use super::config::ClusterConfig;

/// A node's handle on the shared Redis. Cheap to clone.
#[derive(Clone)]
pub struct RedisCluster {
    client: redis::Client,
    /// Keys the digests of personal text in key names (`cluster.secret`).
    hash_key: std::sync::Arc<[u8]>,
    conn: ConnectionManager,
    prefix: String,
    node: String,
}

impl fmt::Debug for RedisCluster {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The URL may carry a password: never printed.
        f.debug_struct("RedisCluster")
            .field("prefix", &self.prefix)
            .field("node", &self.node)
            .finish_non_exhaustive()
    }
}

impl RedisCluster {
    /// Connects (failing if Redis is unreachable now: a node does not start blind).
    pub async fn connect(config: &ClusterConfig) -> Result<Self, ClusterError> {
        let url = config
            .redis_url
            .as_ref()
            .ok_or_else(|| ClusterError::Unavailable("cluster.redis_url is not set".into()))?;
        let client = redis::Client::open(url.expose_secret())
            .map_err(|e| ClusterError::Unavailable(format!("cluster.redis_url: {e}")))?;
        let timeout = Duration::from_millis(config.redis_timeout_ms.max(1));
        let manager = ConnectionManagerConfig::new()
            .set_response_timeout(timeout)
            .set_connection_timeout(timeout)
            // Reconnects are tried again on the next command; none waits long.
            .set_number_of_retries(1)
            .set_max_delay(200);
        let conn = ConnectionManager::new_with_config(client.clone(), manager)
            .await
            .map_err(unavailable)?;
        let hash_key = config
            .secret
            .as_ref()
            .map(|s| s.expose_secret().as_bytes().to_vec())
            .unwrap_or_default();
        Ok(Self {
            hash_key: hash_key.into(),
            client,
            conn,
            prefix: config.key_prefix.clone(),
            node: config.node_name(),
        })
    }

    /// `<prefix>:<part>:<part>…`
    pub fn key(&self, parts: &[&str]) -> String {
        let mut key = self.prefix.clone();
        for part in parts {
            key.push(':');
            key.push_str(part);
        }
        key
    }

    /// This node's name in the registry.
    pub fn node(&self) -> &str {
        &self.node
    }

    /// A key part standing for personal or secret text (a login name, an address, a
    /// link token): its HMAC-SHA256 under `cluster.secret`, in hex, so neither Redis
    /// nor whoever reads it holds the text (a plain hash of an IPv4 address is
    /// reversed by trying them all).
    pub(crate) fn hashed(&self, text: &str) -> String {
        use hmac::{Hmac, Mac};
        // HMAC takes keys of any length, the empty one included.
        let Ok(mut mac) = Hmac::<sha2::Sha256>::new_from_slice(&self.hash_key) else {
            return String::new();
        };
        mac.update(text.as_bytes());
        mac.finalize()
            .into_bytes()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }

    /// The client, for connections of their own (subscriptions).
    pub(crate) fn client(&self) -> &redis::Client {
        &self.client
    }

    /// A connection for one command (a clone of the multiplexed one).
    pub(crate) fn conn(&self) -> ConnectionManager {
        self.conn.clone()
    }

    /// `SET key value PX ttl`: a value that expires by itself.
    pub(crate) async fn set_expiring(
        &self,
        key: String,
        value: &str,
        ttl: Duration,
    ) -> Result<(), ClusterError> {
        use redis::AsyncCommands;
        let ms = u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX).max(1);
        let opts = redis::SetOptions::default().with_expiration(redis::SetExpiry::PX(ms));
        self.conn()
            .set_options::<_, _, ()>(key, value, opts)
            .await
            .map_err(unavailable)
    }
}

pub(crate) fn unavailable(e: redis::RedisError) -> ClusterError {
    ClusterError::Unavailable(e.to_string())
}
