//! Which implementation of each shared-state seam a node runs with.

use std::sync::Arc;
use std::time::Duration;

use super::{forward, lease, limiter, links, redis};
use crate::accounts::secrets::DataKey;
use crate::beauty::preview::{BeautyPreviews, PreviewStore};
use crate::http::ratelimit::RateLimiter;

/// Play and download links kept at most by one node; the one expiring first goes
/// beyond that.
const MAX_LOCAL_LINKS: usize = 10_000;
/// A dispatch lease is held for one database transaction; one left by a dead node
/// frees itself after this.
const LEASE_TTL: Duration = Duration::from_secs(10);
/// How long a node waits for a lease another node holds before refusing.
const LEASE_WAIT: Duration = Duration::from_secs(5);

/// The implementations of the shared-state seams this node runs with.
#[derive(Debug, Clone)]
pub struct Shared {
    pub lease: Arc<dyn lease::Lease>,
    pub links: Arc<dyn links::LinkStore>,
    pub previews: Arc<dyn PreviewStore>,
    /// Login attempts and public customer endpoints, per name and per address.
    pub limiter: Arc<dyn limiter::AttemptLimiter>,
    /// Requests for a verification attempt held by another node.
    pub forwarder: Arc<dyn forward::Forwarder>,
}

impl Shared {
    /// One node: everything in this process.
    pub fn in_process(attempts_per_minute: u32) -> Self {
        Self {
            lease: Arc::new(lease::LocalLease::default()),
            links: Arc::new(links::LocalLinks::new(MAX_LOCAL_LINKS)),
            previews: Arc::new(BeautyPreviews::default()),
            limiter: Arc::new(RateLimiter::new(
                attempts_per_minute,
                Duration::from_secs(60),
            )),
            forwarder: Arc::new(forward::LocalForwarder),
        }
    }

    /// Several nodes: everything in Redis.
    /// `seal` encrypts what crosses Redis between nodes (the data key).
    pub fn redis(redis: &redis::RedisCluster, attempts_per_minute: u32, seal: DataKey) -> Self {
        Self {
            lease: Arc::new(redis::RedisLease::new(redis.clone(), LEASE_TTL, LEASE_WAIT)),
            links: Arc::new(redis::RedisLinks::new(redis.clone())),
            previews: Arc::new(redis::RedisPreviews::new(redis.clone())),
            limiter: Arc::new(redis::RedisLimiter::new(
                redis.clone(),
                "attempts",
                attempts_per_minute,
                Duration::from_secs(60),
            )),
            forwarder: Arc::new(redis::RedisForwarder::new(redis.clone(), seal)),
        }
    }
}
