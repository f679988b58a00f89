//! Requests for an attempt another node holds, through Redis:
//! - `<prefix>:held:<hmac(key)>` → the holding node, expiring with what it names;
//! - `<prefix>:forward:<node>`: a node's inbox of requests and answers.
//!
//! Messages are sealed with the data key (AES-GCM): they carry camera frames and
//! bearer tokens, which Redis and its network never see in clear. A request nobody
//! answers within [`ANSWER_WITHIN`] is refused as cluster-unavailable.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use axum::body::Body;
use base64::Engine;
use futures_util::future::BoxFuture;
use redis::AsyncCommands;
use serde::{Deserialize, Serialize};
use tokio::sync::oneshot;
use tower::ServiceExt;
use tracing::{debug, warn};

use super::{RedisCluster, subscribe, unavailable};
use crate::accounts::secrets::DataKey;
use crate::cluster::ClusterError;
use crate::cluster::forward::{ForwardRequest, ForwardResponse, ForwardedHere, Forwarder, HeldKey};

/// A frame waits behind the face engine's queue at the holder: generous.
const ANSWER_WITHIN: Duration = Duration::from_secs(10);
/// The largest answer carried back (attempt views, QR codes: a few kB).
const MAX_ANSWER_BYTES: usize = 256 * 1024;

#[derive(Debug, Serialize, Deserialize)]
enum Message {
    Request {
        id: u64,
        from: String,
        request: ForwardRequest,
    },
    Answer {
        id: u64,
        response: ForwardResponse,
    },
}

type Waiting = Arc<Mutex<HashMap<u64, oneshot::Sender<ForwardResponse>>>>;

#[derive(Debug)]
pub struct RedisForwarder {
    redis: RedisCluster,
    seal: DataKey,
    waiting: Waiting,
    next_id: AtomicU64,
    inbox: OnceLock<tokio::task::JoinHandle<()>>,
}

impl RedisForwarder {
    pub fn new(redis: RedisCluster, seal: DataKey) -> Self {
        Self {
            redis,
            seal,
            waiting: Arc::default(),
            next_id: AtomicU64::new(1),
            inbox: OnceLock::new(),
        }
    }

    fn held_key(&self, key: &HeldKey) -> String {
        self.redis.key(&["held", &self.redis.hashed(&key.name())])
    }

    fn inbox_of(redis: &RedisCluster, node: &str) -> String {
        redis.key(&["forward", node])
    }

    /// Publishes `message` to `node`'s inbox; returns how many listened.
    async fn send(
        redis: &RedisCluster,
        seal: &DataKey,
        node: &str,
        message: &Message,
    ) -> Result<u64, ClusterError> {
        let json = serde_json::to_vec(message)
            .map_err(|e| ClusterError::Corrupt(format!("forwarded message: {e}")))?;
        let sealed = base64::engine::general_purpose::STANDARD.encode(seal.encrypt_bytes(&json));
        redis
            .conn()
            .publish::<_, _, u64>(Self::inbox_of(redis, node), sealed)
            .await
            .map_err(unavailable)
    }
}

impl Drop for RedisForwarder {
    fn drop(&mut self) {
        if let Some(inbox) = self.inbox.get() {
            inbox.abort();
        }
    }
}

impl Forwarder for RedisForwarder {
    fn hold<'a>(
        &'a self,
        key: &'a HeldKey,
        ttl: Duration,
    ) -> BoxFuture<'a, Result<(), ClusterError>> {
        Box::pin(async move {
            let ms = u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX).max(1);
            let opts = redis::SetOptions::default().with_expiration(redis::SetExpiry::PX(ms));
            self.redis
                .conn()
                .set_options::<_, _, ()>(self.held_key(key), self.redis.node(), opts)
                .await
                .map_err(unavailable)
        })
    }

    fn forward<'a>(
        &'a self,
        key: &'a HeldKey,
        request: ForwardRequest,
    ) -> BoxFuture<'a, Result<Option<ForwardResponse>, ClusterError>> {
        Box::pin(async move {
            let holder: Option<String> = self
                .redis
                .conn()
                .get(self.held_key(key))
                .await
                .map_err(unavailable)?;
            let Some(holder) = holder.filter(|h| h != self.redis.node()) else {
                return Ok(None);
            };
            let id = self.next_id.fetch_add(1, Ordering::Relaxed);
            let (tx, rx) = oneshot::channel();
            lock(&self.waiting).insert(id, tx);
            let message = Message::Request {
                id,
                from: self.redis.node().to_owned(),
                request,
            };
            let sent = Self::send(&self.redis, &self.seal, &holder, &message).await;
            let answer = match sent {
                // Nobody listens there: the holder is gone, and the attempt with it.
                Ok(0) => Ok(None),
                Ok(_) => match tokio::time::timeout(ANSWER_WITHIN, rx).await {
                    Ok(Ok(response)) => Ok(Some(response)),
                    _ => Err(ClusterError::Unavailable(format!(
                        "node {holder} did not answer a forwarded request"
                    ))),
                },
                Err(e) => Err(e),
            };
            lock(&self.waiting).remove(&id);
            answer
        })
    }

    fn serve(&self, router: axum::Router) {
        let (redis, seal, waiting) = (self.redis.clone(), self.seal.clone(), self.waiting.clone());
        let channel = Self::inbox_of(&self.redis, self.redis.node());
        let task = tokio::spawn(subscribe::listen(
            self.redis.clone(),
            channel,
            "forwarded requests",
            None,
            move |payload| {
                on_message(
                    payload,
                    redis.clone(),
                    seal.clone(),
                    waiting.clone(),
                    router.clone(),
                )
            },
        ));
        if self.inbox.set(task).is_err() {
            warn!("forwarded requests are served already");
        }
    }
}

async fn on_message(
    payload: String,
    redis: RedisCluster,
    seal: DataKey,
    waiting: Waiting,
    router: axum::Router,
) {
    let opened = base64::engine::general_purpose::STANDARD
        .decode(payload.as_bytes())
        .ok()
        .and_then(|sealed| seal.decrypt_bytes(&sealed).ok())
        .and_then(|json| serde_json::from_slice::<Message>(&json).ok());
    match opened {
        Some(Message::Answer { id, response }) => {
            if let Some(tx) = lock(&waiting).remove(&id) {
                let _ = tx.send(response);
            }
        }
        Some(Message::Request { id, from, request }) => {
            // Answered as a task of its own: a slow frame holds up no other message.
            tokio::spawn(async move {
                let response = answer(router, request).await;
                let message = Message::Answer { id, response };
                if let Err(e) = RedisForwarder::send(&redis, &seal, &from, &message).await {
                    warn!(node = %from, "forwarded answer not sent: {e}");
                }
            });
        }
        None => warn!("a forwarded message that does not open (another data key?)"),
    }
}

/// Runs `request` through this node's own routes.
async fn answer(router: axum::Router, request: ForwardRequest) -> ForwardResponse {
    let failed = |status: u16| ForwardResponse {
        status,
        content_type: None,
        body: Vec::new(),
    };
    let mut builder = axum::http::Request::builder()
        .method(request.method.as_str())
        .uri(request.uri.as_str());
    for (name, value) in &request.headers {
        builder = builder.header(name.as_str(), value.as_str());
    }
    let Ok(mut http) = builder.body(Body::from(request.body)) else {
        debug!("a forwarded request that does not parse");
        return failed(400);
    };
    http.extensions_mut().insert(ForwardedHere);
    if let Ok(peer) = request.peer.parse::<SocketAddr>() {
        http.extensions_mut()
            .insert(axum::extract::ConnectInfo(peer));
    }
    let Ok(response) = router.oneshot(http).await;
    let status = response.status().as_u16();
    let content_type = response
        .headers()
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    match axum::body::to_bytes(response.into_body(), MAX_ANSWER_BYTES).await {
        Ok(body) => ForwardResponse {
            status,
            content_type,
            body: body.to_vec(),
        },
        Err(_) => failed(500),
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}
