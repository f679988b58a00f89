//! Named leases: one holder at a time per name, across every node that shares them.
//! Queue dispatch takes one, so two dispatches never give one agent more than its
//! capacity. Here, in-process async locks; across nodes, `cluster::redis::RedisLease`.

use std::collections::HashMap;
use std::fmt::Debug;
use std::sync::{Arc, Mutex};

use futures_util::future::BoxFuture;

use super::ClusterError;

/// Held while alive; dropping it releases the lease.
#[derive(Debug)]
pub struct LeaseGuard {
    _held: Box<dyn std::any::Any + Send + Sync>,
}

impl LeaseGuard {
    /// A guard releasing the lease when `held` drops.
    pub fn new(held: impl std::any::Any + Send + Sync) -> Self {
        Self {
            _held: Box::new(held),
        }
    }
}

/// Who may do a thing now.
pub trait Lease: Send + Sync + Debug {
    /// Waits until `name` is free, then holds it until the guard drops. Fails when
    /// the shared state cannot be reached (or, across nodes, stays taken too long).
    fn acquire<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Result<LeaseGuard, ClusterError>>;
}

/// Leases of this process.
#[derive(Debug, Default)]
pub struct LocalLease {
    locks: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
}

impl Lease for LocalLease {
    fn acquire<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Result<LeaseGuard, ClusterError>> {
        let lock = self
            .locks
            .lock()
            // A plain map of locks: still consistent after a panic elsewhere.
            .unwrap_or_else(|p| p.into_inner())
            .entry(name.to_owned())
            .or_default()
            .clone();
        Box::pin(async move { Ok(LeaseGuard::new(lock.lock_owned().await)) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn one_holder_per_name_and_names_are_independent() {
        let lease = LocalLease::default();
        let held = lease.acquire("dispatch").await.expect("free");
        let other =
            tokio::time::timeout(Duration::from_millis(50), lease.acquire("dispatch")).await;
        assert!(other.is_err(), "the second waits while the first holds it");
        let _beside = tokio::time::timeout(Duration::from_millis(50), lease.acquire("other"))
            .await
            .expect("another name is free")
            .expect("local leases never fail");
        drop(held);
        tokio::time::timeout(Duration::from_millis(50), lease.acquire("dispatch"))
            .await
            .expect("free again once dropped")
            .expect("local leases never fail");
    }
}
