//! Attempt limits shared by every node (login attempts per name and per client
//! address): a fixed window per key. Here, the process's own [`RateLimiter`]; across
//! nodes, a counter in Redis (`cluster::redis::RedisLimiter`), so a client cannot
//! multiply its allowance by the number of signaling nodes.

use std::fmt::Debug;
use std::time::Instant;

use futures_util::future::BoxFuture;

use super::ClusterError;
use crate::http::ratelimit::RateLimiter;

pub trait AttemptLimiter: Send + Sync + Debug {
    /// Counts an attempt for `key`; `false` when the key is over its limit now.
    fn allow<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<bool, ClusterError>>;
}

impl AttemptLimiter for RateLimiter {
    fn allow<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<bool, ClusterError>> {
        let allowed = RateLimiter::allow(self, key, Instant::now());
        Box::pin(async move { Ok(allowed) })
    }
}
