//! State one node holds in memory and cannot share: an open face-verification
//! attempt (its liveness judge runs frame after frame). Behind a load balancer, the
//! attempt's next request may reach another signaling node; that node hands the
//! request to the one holding the attempt and returns its answer. One node: nothing is
//! elsewhere. Several: `cluster::redis::RedisForwarder`.

use std::fmt::Debug;
use std::time::Duration;

use futures_util::future::BoxFuture;
use serde::{Deserialize, Serialize};

use super::ClusterError;

/// What a request names that one node holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HeldKey {
    /// An attempt, by its id.
    Attempt(String),
    /// An attempt's phone link, by its token.
    Link(String),
    /// An attempt taken over by a phone, by the phone's device token.
    Device(String),
}

impl HeldKey {
    /// The key's name in shared state (tokens are digested before they are stored).
    pub fn name(&self) -> String {
        match self {
            HeldKey::Attempt(id) => format!("attempt:{id}"),
            HeldKey::Link(token) => format!("link:{token}"),
            HeldKey::Device(token) => format!("device:{token}"),
        }
    }
}

/// A request as another node replays it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ForwardRequest {
    pub method: String,
    /// Path and query.
    pub uri: String,
    /// The headers the handlers read (authorization, content type, device token,
    /// language); nothing else crosses.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// The client's address, which the holder's rate limits key on.
    pub peer: String,
}

/// The holder's answer.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ForwardResponse {
    pub status: u16,
    pub content_type: Option<String>,
    pub body: Vec<u8>,
}

/// Marks a request another node forwarded here: it is answered here, never
/// forwarded again.
#[derive(Debug, Clone, Copy)]
pub struct ForwardedHere;

/// Where held state lives and how requests reach it.
pub trait Forwarder: Send + Sync + Debug {
    /// Says this node holds `key` for `ttl` from now.
    fn hold<'a>(
        &'a self,
        key: &'a HeldKey,
        ttl: Duration,
    ) -> BoxFuture<'a, Result<(), ClusterError>>;

    /// Hands `request` to the node holding `key` and returns its answer; `None` when
    /// no other live node holds it.
    fn forward<'a>(
        &'a self,
        key: &'a HeldKey,
        request: ForwardRequest,
    ) -> BoxFuture<'a, Result<Option<ForwardResponse>, ClusterError>>;

    /// Starts answering other nodes' requests with `router` (this node's own routes).
    fn serve(&self, router: axum::Router) {
        let _ = router;
    }
}

/// One node: everything is held here.
#[derive(Debug, Default)]
pub struct LocalForwarder;

impl Forwarder for LocalForwarder {
    fn hold<'a>(
        &'a self,
        _key: &'a HeldKey,
        _ttl: Duration,
    ) -> BoxFuture<'a, Result<(), ClusterError>> {
        Box::pin(async { Ok(()) })
    }

    fn forward<'a>(
        &'a self,
        _key: &'a HeldKey,
        _request: ForwardRequest,
    ) -> BoxFuture<'a, Result<Option<ForwardResponse>, ClusterError>> {
        Box::pin(async { Ok(None) })
    }
}
