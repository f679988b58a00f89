//! A fixed-window attempt counter in Redis: `<prefix>:limit:<name>:<hmac(key)>`,
//! incremented atomically, expiring with its window. Keys are hashed: they hold login
//! names and client addresses, which never sit in Redis in clear.

use std::time::Duration;

use futures_util::future::BoxFuture;

use super::{RedisCluster, unavailable};
use crate::cluster::ClusterError;
use crate::cluster::limiter::AttemptLimiter;

/// Counts one attempt; the first of a window starts its expiry.
const COUNT: &str = r"local n = redis.call('incr', KEYS[1])
if n == 1 then redis.call('pexpire', KEYS[1], ARGV[1]) end
return n";

#[derive(Debug, Clone)]
pub struct RedisLimiter {
    redis: RedisCluster,
    name: &'static str,
    limit: u32,
    window: Duration,
}

impl RedisLimiter {
    /// At most `limit` attempts per key in each `window`; `name` keeps limiters apart.
    pub fn new(redis: RedisCluster, name: &'static str, limit: u32, window: Duration) -> Self {
        Self {
            redis,
            name,
            limit,
            window,
        }
    }
}

impl AttemptLimiter for RedisLimiter {
    fn allow<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<bool, ClusterError>> {
        Box::pin(async move {
            let hex = self.redis.hashed(key);
            let window_ms = u64::try_from(self.window.as_millis())
                .unwrap_or(u64::MAX)
                .max(1);
            let count: u64 = redis::Script::new(COUNT)
                .key(self.redis.key(&["limit", self.name, &hex]))
                .arg(window_ms)
                .invoke_async(&mut self.redis.conn())
                .await
                .map_err(unavailable)?;
            Ok(count <= u64::from(self.limit))
        })
    }
}
