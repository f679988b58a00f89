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
        Box::pin(async move { self.redis.set_expiring(self.key(token), &value, ttl).await })
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
