//! State one node holds in memory and cannot share: an open face-verification
//! attempt (its liveness judge runs frame after frame). Behind a load balancer, the
//! attempt's next request may reach another signaling node; that node hands the
//! request to the one holding the attempt and returns its answer. One node: nothing is
//! elsewhere. Several: `cluster::redis::RedisForwarder`.

use std::fmt::Debug;
use std::time::Duration;

use axum::http::HeaderMap;
use futures_util::future::BoxFuture;
use serde::{Deserialize, Serialize};

use super::ClusterError;

/// The header a phone sends its device token in.
pub const DEVICE_HEADER: &str = "x-kefu-device";

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

/// What held state a request path names, if any (the start of an attempt names none:
/// it opens one where it lands).
pub fn held_key(path: &str, headers: &HeaderMap) -> Option<HeldKey> {
    if let Some(rest) = path.strip_prefix("/api/v1/me/verification/attempts/") {
        let id = rest.split('/').next().filter(|id| !id.is_empty())?;
        return Some(HeldKey::Attempt(id.to_owned()));
    }
    let rest = path.strip_prefix("/api/v1/phone-verification/")?;
    if rest == "frames" {
        let device = headers.get(DEVICE_HEADER)?.to_str().ok()?;
        return (!device.is_empty()).then(|| HeldKey::Device(device.to_owned()));
    }
    (!rest.is_empty() && !rest.contains('/')).then(|| HeldKey::Link(rest.to_owned()))
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
    #[serde(with = "base64_bytes")]
    pub body: Vec<u8>,
    /// The client's address, which the holder's rate limits key on.
    pub peer: String,
}

/// The holder's answer.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ForwardResponse {
    pub status: u16,
    pub content_type: Option<String>,
    #[serde(with = "base64_bytes")]
    pub body: Vec<u8>,
}

/// Bodies as base64 text: JSON would spell bytes as an array of numbers (4× larger).
mod base64_bytes {
    use base64::Engine;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&base64::engine::general_purpose::STANDARD.encode(bytes))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let text = String::deserialize(d)?;
        base64::engine::general_purpose::STANDARD
            .decode(text.as_bytes())
            .map_err(serde::de::Error::custom)
    }
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

    /// Starts answering other nodes' requests with `router` (this node's own routes);
    /// resolves once it listens.
    fn serve(&self, router: axum::Router) -> BoxFuture<'_, ()> {
        let _ = router;
        Box::pin(async {})
    }

    /// Stops answering them (the node is stopping).
    fn stop_serving(&self) {}
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
