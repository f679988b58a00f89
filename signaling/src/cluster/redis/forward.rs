//! Requests for an attempt another node holds, through Redis:
//! - `<prefix>:held:<hmac(key)>` → the holding node, expiring with what it names;
//! - `<prefix>:forward:<node>`: a node's inbox of requests and answers.
//!
//! Messages are sealed with the data key (AES-GCM): they carry camera frames and
//! bearer tokens, which Redis and its network never see in clear. Each request has a
//! random id and its answer must come from the node asked, so an answer can reach no
//! other request (not even one of a restarted node of the same name). A request nobody
//! answers within [`ANSWER_WITHIN`] is refused as cluster-unavailable.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Body;
use axum::response::IntoResponse;
use futures_util::future::BoxFuture;
use redis::AsyncCommands;
use serde::{Deserialize, Serialize};
use tokio::sync::{Semaphore, oneshot};
use tower::ServiceExt;
use tracing::{debug, warn};

use super::{RedisCluster, subscribe, unavailable};
use crate::accounts::secrets::DataKey;
use crate::cluster::ClusterError;
use crate::cluster::forward::{
    ForwardRequest, ForwardResponse, ForwardedHere, Forwarder, HeldKey, held_key,
};
use crate::http::error::ApiError;

/// A frame waits behind the face engine's queue at the holder: generous.
const ANSWER_WITHIN: Duration = Duration::from_secs(10);
/// The largest answer carried back (attempt views, QR codes: a few kB).
const MAX_ANSWER_BYTES: usize = 256 * 1024;
/// Requests this node forwards at once at most; more are refused (503), so a flood of
/// frames cannot queue up unbounded in memory or in Redis.
const MAX_IN_FLIGHT: usize = 64;
/// A holder between two subscriptions (a reconnect) hears nothing for a moment.
const RETRY_UNHEARD: Duration = Duration::from_millis(300);
/// How long a node waits for its inbox's subscription before serving anyway.
const LISTEN_WITHIN: Duration = Duration::from_secs(5);

#[derive(Debug, Serialize, Deserialize)]
enum Message {
    Request {
        id: String,
        from: String,
        request: ForwardRequest,
    },
    Answer {
        id: String,
        /// The node that answers: it must be the one asked.
        from: String,
        response: ForwardResponse,
    },
}

/// Requests waiting for an answer: id → (the node asked, where the answer goes).
type Waiting = Arc<Mutex<HashMap<String, (String, oneshot::Sender<ForwardResponse>)>>>;

#[derive(Debug)]
pub struct RedisForwarder {
    redis: RedisCluster,
    seal: DataKey,
    waiting: Waiting,
    in_flight: Arc<Semaphore>,
    inbox: Mutex<Option<tokio::task::JoinHandle<()>>>,
}

impl RedisForwarder {
    pub fn new(redis: RedisCluster, seal: DataKey) -> Self {
        Self {
            redis,
            seal,
            waiting: Arc::default(),
            in_flight: Arc::new(Semaphore::new(MAX_IN_FLIGHT)),
            inbox: Mutex::new(None),
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
        redis
            .conn()
            .publish::<_, _, u64>(Self::inbox_of(redis, node), seal.encrypt_bytes(&json))
            .await
            .map_err(unavailable)
    }

    /// Whether `node` is alive (its registry entry has not expired).
    async fn alive(&self, node: &str) -> Result<bool, ClusterError> {
        self.redis
            .conn()
            .exists(self.redis.key(&["node", node]))
            .await
            .map_err(unavailable)
    }

    /// Sends a request to `holder` and waits for its answer.
    async fn ask(
        &self,
        holder: &str,
        request: ForwardRequest,
    ) -> Result<Option<ForwardResponse>, ClusterError> {
        let id = uuid::Uuid::new_v4().simple().to_string();
        let (tx, rx) = oneshot::channel();
        let _waiting = WaitingEntry::new(&self.waiting, &id, holder, tx);
        let message = Message::Request {
            id,
            from: self.redis.node().to_owned(),
            request,
        };
        let mut heard = Self::send(&self.redis, &self.seal, holder, &message).await?;
        if heard == 0 {
            tokio::time::sleep(RETRY_UNHEARD).await;
            heard = Self::send(&self.redis, &self.seal, holder, &message).await?;
        }
        if heard == 0 {
            // Gone, and the attempt with it; alive but deaf is a passing outage.
            return if self.alive(holder).await? {
                Err(ClusterError::Unavailable(format!(
                    "node {holder} does not listen for forwarded requests"
                )))
            } else {
                Ok(None)
            };
        }
        match tokio::time::timeout(ANSWER_WITHIN, rx).await {
            Ok(Ok(response)) => Ok(Some(response)),
            _ => Err(ClusterError::Unavailable(format!(
                "node {holder} did not answer a forwarded request"
            ))),
        }
    }
}

/// A request's place in [`Waiting`], removed however the wait ends (a client that
/// goes away included).
struct WaitingEntry<'a> {
    waiting: &'a Waiting,
    id: String,
}

impl<'a> WaitingEntry<'a> {
    fn new(
        waiting: &'a Waiting,
        id: &str,
        holder: &str,
        tx: oneshot::Sender<ForwardResponse>,
    ) -> Self {
        lock(waiting).insert(id.to_owned(), (holder.to_owned(), tx));
        Self {
            waiting,
            id: id.to_owned(),
        }
    }
}

impl Drop for WaitingEntry<'_> {
    fn drop(&mut self) {
        lock(self.waiting).remove(&self.id);
    }
}

impl Forwarder for RedisForwarder {
    fn hold<'a>(
        &'a self,
        key: &'a HeldKey,
        ttl: Duration,
    ) -> BoxFuture<'a, Result<(), ClusterError>> {
        Box::pin(async move {
            let node = self.redis.node().to_owned();
            self.redis
                .set_expiring(self.held_key(key), &node, ttl)
                .await
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
            let Ok(_permit) = self.in_flight.clone().try_acquire_owned() else {
                return Err(ClusterError::Unavailable(
                    "too many forwarded requests at once".into(),
                ));
            };
            self.ask(&holder, request).await
        })
    }

    fn serve(&self, router: axum::Router) -> BoxFuture<'_, ()> {
        let (redis, seal, waiting) = (self.redis.clone(), self.seal.clone(), self.waiting.clone());
        let channel = Self::inbox_of(&self.redis, self.redis.node());
        let (ready_tx, ready) = oneshot::channel();
        let task = tokio::spawn(subscribe::listen(
            self.redis.clone(),
            channel,
            "forwarded requests",
            Some(ready_tx),
            move |payload: Vec<u8>| {
                on_message(
                    payload,
                    redis.clone(),
                    seal.clone(),
                    waiting.clone(),
                    router.clone(),
                )
            },
        ));
        if let Some(earlier) = lock(&self.inbox).replace(task) {
            earlier.abort();
        }
        Box::pin(async move {
            if tokio::time::timeout(LISTEN_WITHIN, ready).await.is_err() {
                warn!("not listening for forwarded requests yet; serving anyway");
            }
        })
    }

    fn stop_serving(&self) {
        if let Some(inbox) = lock(&self.inbox).take() {
            inbox.abort();
        }
    }
}

impl Drop for RedisForwarder {
    fn drop(&mut self) {
        self.stop_serving();
    }
}

async fn on_message(
    payload: Vec<u8>,
    redis: RedisCluster,
    seal: DataKey,
    waiting: Waiting,
    router: axum::Router,
) {
    let opened = seal
        .decrypt_bytes(&payload)
        .ok()
        .and_then(|json| serde_json::from_slice::<Message>(&json).ok());
    match opened {
        Some(Message::Answer { id, from, response }) => {
            let mut waiting = lock(&waiting);
            // Only the node asked answers a request.
            if waiting.get(&id).is_some_and(|(asked, _)| *asked == from)
                && let Some((_, tx)) = waiting.remove(&id)
            {
                let _ = tx.send(response);
            }
        }
        Some(Message::Request { id, from, request }) => {
            // Answered as a task of its own: a slow frame holds up no other message.
            tokio::spawn(async move {
                let response = answer(router, request).await;
                let message = Message::Answer {
                    id,
                    from: redis.node().to_owned(),
                    response,
                };
                if let Err(e) = RedisForwarder::send(&redis, &seal, &from, &message).await {
                    warn!(node = %from, "forwarded answer not sent: {e}");
                }
            });
        }
        None => warn!("a forwarded message that does not open (another data key?)"),
    }
}

/// Runs `request` through this node's own routes (only the attempt routes: whatever
/// else a message asks for is refused).
async fn answer(router: axum::Router, request: ForwardRequest) -> ForwardResponse {
    let response = match replayed(request) {
        Ok(http) => match router.oneshot(http).await {
            Ok(response) => response,
            Err(never) => match never {},
        },
        Err(reason) => {
            debug!("a forwarded request refused: {reason}");
            ApiError::BadRequest(reason.into()).into_response()
        }
    };
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
        Err(_) => ForwardResponse {
            status: 500,
            content_type: Some("application/json".into()),
            body: br#"{"error":"internal","message":"the answer was too large"}"#.to_vec(),
        },
    }
}

/// The HTTP request a forwarded one stands for.
fn replayed(request: ForwardRequest) -> Result<axum::http::Request<Body>, &'static str> {
    let mut builder = axum::http::Request::builder()
        .method(request.method.as_str())
        .uri(request.uri.as_str());
    for (name, value) in &request.headers {
        builder = builder.header(name.as_str(), value.as_str());
    }
    let mut http = builder
        .body(Body::from(request.body))
        .map_err(|_| "a forwarded request that does not parse")?;
    if held_key(http.uri().path(), http.headers()).is_none() {
        return Err("only attempt requests are forwarded");
    }
    http.extensions_mut().insert(ForwardedHere);
    if let Ok(peer) = request.peer.parse::<SocketAddr>() {
        http.extensions_mut()
            .insert(axum::extract::ConnectInfo(peer));
    }
    Ok(http)
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}
