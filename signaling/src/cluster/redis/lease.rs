//! Leases in Redis: `<prefix>:lease:<name>` holds the holder's random token, set with
//! `SET NX PX`. The holder renews it (every third of its lifetime) while it holds it;
//! release and renewal only touch the key while it still holds that token, so a
//! holder that stalled past the expiry never frees or extends someone else's lease.

use std::time::{Duration, Instant};

use futures_util::future::BoxFuture;
use redis::AsyncCommands;
use tracing::warn;

use super::{RedisCluster, unavailable};
use crate::cluster::ClusterError;
use crate::cluster::lease::{Lease, LeaseGuard};

/// Renews the key if it still holds our token.
const RENEW: &str = r"if redis.call('get', KEYS[1]) == ARGV[1] then
  return redis.call('pexpire', KEYS[1], ARGV[2]) else return 0 end";
/// Deletes the key if it still holds our token.
const RELEASE: &str = r"if redis.call('get', KEYS[1]) == ARGV[1] then
  return redis.call('del', KEYS[1]) else return 0 end";

/// How often a waiting acquirer tries again.
const RETRY: Duration = Duration::from_millis(20);

#[derive(Debug, Clone)]
pub struct RedisLease {
    redis: RedisCluster,
    /// Lifetime of an unrenewed lease (a holder that died frees it after this).
    ttl: Duration,
    /// How long an acquirer waits for a busy lease before giving up.
    wait: Duration,
}

impl RedisLease {
    pub fn new(redis: RedisCluster, ttl: Duration, wait: Duration) -> Self {
        Self {
            redis,
            ttl: ttl.max(Duration::from_millis(30)),
            wait,
        }
    }
}

/// The lease while held: renewal runs until it drops; then it is released.
#[derive(Debug)]
struct Held {
    renewer: tokio::task::JoinHandle<()>,
    redis: RedisCluster,
    key: String,
    token: String,
}

impl Drop for Held {
    fn drop(&mut self) {
        self.renewer.abort();
        release_later(self.redis.clone(), self.key.clone(), self.token.clone());
    }
}

/// Frees the lease if `token` still holds it, in the background. Without a runtime
/// (process exit) the lease simply expires.
fn release_later(redis: RedisCluster, key: String, token: String) {
    if let Ok(runtime) = tokio::runtime::Handle::try_current() {
        runtime.spawn(async move {
            let released: Result<i64, _> = redis::Script::new(RELEASE)
                .key(&key)
                .arg(&token)
                .invoke_async(&mut redis.conn())
                .await;
            if let Err(e) = released {
                warn!(%key, "lease not released (it expires by itself): {e}");
            }
        });
    }
}

impl Lease for RedisLease {
    fn acquire<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Result<LeaseGuard, ClusterError>> {
        Box::pin(async move {
            let key = self.redis.key(&["lease", name]);
            let token = uuid::Uuid::new_v4().simple().to_string();
            let ttl_ms = u64::try_from(self.ttl.as_millis()).unwrap_or(u64::MAX);
            let started = Instant::now();
            loop {
                let opts = redis::SetOptions::default()
                    .conditional_set(redis::ExistenceCheck::NX)
                    .with_expiration(redis::SetExpiry::PX(ttl_ms));
                let taken: Option<String> =
                    match self.redis.conn().set_options(&key, &token, opts).await {
                        Ok(taken) => taken,
                        Err(e) => {
                            // The SET may have landed with its answer lost: take back
                            // whatever our token holds, or every node waits out its ttl.
                            release_later(self.redis.clone(), key.clone(), token.clone());
                            return Err(unavailable(e));
                        }
                    };
                if taken.is_some() {
                    break;
                }
                if started.elapsed() >= self.wait {
                    return Err(ClusterError::Unavailable(format!(
                        "lease {name} still held by another node after {:?}",
                        self.wait
                    )));
                }
                tokio::time::sleep(RETRY).await;
            }
            let renewer = tokio::spawn(renew(
                self.redis.clone(),
                key.clone(),
                token.clone(),
                self.ttl,
            ));
            Ok(LeaseGuard::new(Held {
                renewer,
                redis: self.redis.clone(),
                key,
                token,
            }))
        })
    }
}

async fn renew(redis: RedisCluster, key: String, token: String, ttl: Duration) {
    let ttl_ms = u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX);
    loop {
        tokio::time::sleep(ttl / 3).await;
        let renewed: Result<i64, _> = redis::Script::new(RENEW)
            .key(&key)
            .arg(&token)
            .arg(ttl_ms)
            .invoke_async(&mut redis.conn())
            .await;
        match renewed {
            Ok(1) => {}
            Ok(_) => {
                warn!(%key, "lease lost (expired before renewal)");
                return;
            }
            // Redis away: try again; the lease expires if it stays away.
            Err(e) => warn!(%key, "lease renewal failed: {e}"),
        }
    }
}
