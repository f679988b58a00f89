//! Short-lived capability links (a recording's play or download link): a random
//! token → a value, until it expires. Across nodes the link must resolve on whichever
//! node the browser reaches, so this is a seam: here the in-process map; in Redis,
//! `cluster::redis::RedisLinks`.

use std::collections::HashMap;
use std::fmt::Debug;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use futures_util::future::BoxFuture;

use super::ClusterError;

/// Where links live.
pub trait LinkStore: Send + Sync + Debug {
    /// Keeps `value` under `token` for `ttl` from now.
    fn put<'a>(
        &'a self,
        token: &'a str,
        value: String,
        ttl: Duration,
    ) -> BoxFuture<'a, Result<(), ClusterError>>;
    /// The value under `token`, unless it expired or never existed.
    fn get<'a>(&'a self, token: &'a str) -> BoxFuture<'a, Result<Option<String>, ClusterError>>;
}

/// Links of this process, bounded: past `max` the one expiring first goes.
#[derive(Debug)]
pub struct LocalLinks {
    links: Mutex<HashMap<String, (String, Instant)>>,
    max: usize,
}

impl LocalLinks {
    pub fn new(max: usize) -> Self {
        Self {
            links: Mutex::new(HashMap::new()),
            max: max.max(1),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, (String, Instant)>> {
        // Plain map: still consistent after a panic elsewhere.
        self.links.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// [`LinkStore::put`] at `now`.
    pub fn put_at(&self, token: &str, value: String, ttl: Duration, now: Instant) {
        let mut links = self.lock();
        links.retain(|_, (_, expires)| *expires > now);
        if links.len() >= self.max
            && let Some(first) = links
                .iter()
                .min_by_key(|(_, (_, expires))| *expires)
                .map(|(k, _)| k.clone())
        {
            links.remove(&first);
        }
        links.insert(token.to_owned(), (value, now + ttl));
    }

    /// [`LinkStore::get`] at `now`.
    pub fn get_at(&self, token: &str, now: Instant) -> Option<String> {
        self.lock()
            .get(token)
            .filter(|(_, expires)| *expires > now)
            .map(|(value, _)| value.clone())
    }
}

impl LinkStore for LocalLinks {
    fn put<'a>(
        &'a self,
        token: &'a str,
        value: String,
        ttl: Duration,
    ) -> BoxFuture<'a, Result<(), ClusterError>> {
        self.put_at(token, value, ttl, Instant::now());
        Box::pin(async { Ok(()) })
    }

    fn get<'a>(&'a self, token: &'a str) -> BoxFuture<'a, Result<Option<String>, ClusterError>> {
        let value = self.get_at(token, Instant::now());
        Box::pin(async move { Ok(value) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_expire_and_the_store_stays_bounded() {
        let links = LocalLinks::new(2);
        let t0 = Instant::now();
        let ttl = Duration::from_secs(10);
        links.put_at("a", "1".into(), ttl, t0);
        links.put_at("b", "2".into(), ttl, t0 + Duration::from_secs(1));
        assert_eq!(
            links.get_at("a", t0 + Duration::from_secs(5)).as_deref(),
            Some("1")
        );
        assert_eq!(links.get_at("a", t0 + ttl), None, "expired");
        assert_eq!(links.get_at("nope", t0), None);
        links.put_at("c", "3".into(), ttl, t0 + Duration::from_secs(2));
        assert_eq!(
            links.get_at("a", t0 + Duration::from_secs(3)),
            None,
            "the first to expire went"
        );
        assert_eq!(
            links.get_at("b", t0 + Duration::from_secs(3)).as_deref(),
            Some("2")
        );
        assert_eq!(
            links.get_at("c", t0 + Duration::from_secs(3)).as_deref(),
            Some("3")
        );
    }
}
