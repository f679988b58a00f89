//! Play/download links in Redis: `<prefix>:link:<hmac(token)>` → value, expiring
//! with the link (`SET … PX`). The token itself is never stored: whoever reads Redis
//! cannot replay a link from it.

use std::time::Duration;

use futures_util::future::BoxFuture;
use redis::AsyncCommands;

use super::{RedisCluster, unavailable};
use crate::cluster::ClusterError;
use crate::cluster::links::LinkStore;

#[derive(Debug, Clone)]
pub struct RedisLinks {
    redis: RedisCluster,
}

impl RedisLinks {
    pub fn new(redis: RedisCluster) -> Self {
        Self { redis }
    }

    fn key(&self, token: &str) -> String {
        let hex = self.redis.hashed(token);
        self.redis.key(&["link", &hex])
    }
}

impl LinkStore for RedisLinks {
    fn put<'a>(
        &'a self,
        token: &'a str,
        value: String,
        ttl: Duration,
    ) -> BoxFuture<'a, Result<(), ClusterError>> {
        Box::pin(async move {
            let ms = u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX).max(1);
            let opts = redis::SetOptions::default().with_expiration(redis::SetExpiry::PX(ms));
            self.redis
                .conn()
                .set_options::<_, _, ()>(self.key(token), value, opts)
                .await
                .map_err(unavailable)
        })
    }

    fn get<'a>(&'a self, token: &'a str) -> BoxFuture<'a, Result<Option<String>, ClusterError>> {
        Box::pin(async move {
            self.redis
                .conn()
                .get(self.key(token))
                .await
                .map_err(unavailable)
        })
    }
}
