//! A node's subscription to one Redis channel, kept alive: a pub/sub connection never
//! writes once subscribed, so a half-open one (a Redis failover, a NAT that forgot
//! it) would wait silently for ever. It is pinged every few seconds and replaced when
//! a ping goes unanswered or the connection ends.

use std::future::Future;
use std::time::Duration;

use futures_util::StreamExt;
use tokio::sync::oneshot;
use tracing::{info, warn};

use super::RedisCluster;

/// How often a subscription proves it is alive.
const PING_EVERY: Duration = Duration::from_secs(5);
/// A ping or a connection attempt slower than this counts as a lost connection.
const DEADLINE: Duration = Duration::from_secs(2);
/// The pause before subscribing again.
const RESUBSCRIBE: Duration = Duration::from_millis(500);

/// Hands every message of `channel` (as text or bytes: `P`) to `on_message` until the
/// task is aborted. `ready` is told once the first subscription holds.
pub(crate) async fn listen<P, F, Fut>(
    redis: RedisCluster,
    channel: String,
    what: &'static str,
    mut ready: Option<oneshot::Sender<()>>,
    mut on_message: F,
) where
    P: redis::FromRedisValue,
    F: FnMut(P) -> Fut,
    Fut: Future<Output = ()>,
{
    let mut failing = false;
    loop {
        let connected = tokio::time::timeout(DEADLINE, redis.client().get_async_pubsub()).await;
        let subscribed = match connected {
            Ok(Ok(mut pubsub)) => match pubsub.subscribe(&channel).await {
                Ok(()) => Some(pubsub),
                Err(e) => {
                    if !failing {
                        warn!(what, "cannot subscribe: {e}");
                    }
                    None
                }
            },
            Ok(Err(e)) => {
                if !failing {
                    warn!(what, "cannot listen: {e}");
                }
                None
            }
            Err(_) => {
                if !failing {
                    warn!(what, "cannot listen: Redis did not answer");
                }
                None
            }
        };
        let Some(pubsub) = subscribed else {
            failing = true;
            tokio::time::sleep(RESUBSCRIBE).await;
            continue;
        };
        if failing {
            info!(what, "listening again");
        }
        if let Some(ready) = ready.take() {
            let _ = ready.send(());
        }
        let (mut sink, mut stream) = pubsub.split();
        let mut ping = tokio::time::interval(PING_EVERY);
        ping.tick().await;
        loop {
            tokio::select! {
                message = stream.next() => {
                    let Some(message) = message else { break };
                    match message.get_payload::<P>() {
                        Ok(payload) => on_message(payload).await,
                        Err(e) => warn!(what, "unreadable message: {e}"),
                    }
                }
                _ = ping.tick() => {
                    // Subscribed, RESP2 answers a ping with an array: any answer will do.
                    let answered = tokio::time::timeout(DEADLINE, sink.ping::<redis::Value>()).await;
                    if !matches!(answered, Ok(Ok(_))) {
                        break;
                    }
                }
            }
        }
        warn!(what, "subscription lost; subscribing again");
        failing = true;
        tokio::time::sleep(RESUBSCRIBE).await;
    }
}
