//! Ends of face-verification attempts across nodes: the attempt runs on the node that
//! opened it, while the agent's workbench may listen on another node's event channel.
//! Each node publishes the ends it decides on `<prefix>:attempt-results` (the attempt
//! id, the agent id, passed, the failure's reason, which node); the others tell their
//! own listeners. Messages are sealed with the data key, so whoever can write to Redis
//! cannot show a workbench a made-up result. An end published while Redis is away is
//! lost; the workbench's poll of the attempt (every 3 s) finds it anyway.

use redis::AsyncCommands;
use serde::{Deserialize, Serialize};
use tokio::sync::broadcast::error::RecvError;
use tracing::warn;

use super::{RedisCluster, RelayTasks, unavailable};
use crate::accounts::UserId;
use crate::accounts::secrets::DataKey;
use crate::verification::attempts::Attempts;

#[derive(Debug, Serialize, Deserialize)]
struct End {
    attempt: String,
    agent: String,
    passed: bool,
    detail: Option<String>,
    node: String,
}

/// Starts relaying this node's attempt ends out and other nodes' in.
pub fn relay_attempt_results(redis: RedisCluster, attempts: Attempts, seal: DataKey) -> RelayTasks {
    let outward = tokio::spawn(publish_ours(redis.clone(), attempts.clone(), seal.clone()));
    let inward = tokio::spawn(listen(redis, attempts, seal));
    RelayTasks::new(outward, inward)
}

async fn publish_ours(redis: RedisCluster, attempts: Attempts, seal: DataKey) {
    let mut results = attempts.subscribe();
    let channel = redis.key(&["attempt-results"]);
    loop {
        let result = match results.recv().await {
            Ok(result) => result,
            Err(RecvError::Lagged(n)) => {
                warn!(
                    missed = n,
                    "attempt results not relayed (this node was behind)"
                );
                continue;
            }
            Err(RecvError::Closed) => return,
        };
        if result.relayed {
            continue;
        }
        let end = End {
            attempt: result.attempt_id,
            agent: result.agent_id.0,
            passed: result.passed,
            detail: result.detail.map(str::to_owned),
            node: redis.node().to_owned(),
        };
        let Ok(json) = serde_json::to_vec(&end) else {
            continue;
        };
        if let Err(e) = redis
            .conn()
            .publish::<_, _, i64>(&channel, seal.encrypt_bytes(&json))
            .await
            .map_err(unavailable)
        {
            warn!("attempt result not relayed: {e}");
        }
    }
}

async fn listen(redis: RedisCluster, attempts: Attempts, seal: DataKey) {
    let channel = redis.key(&["attempt-results"]);
    let me = redis.node().to_owned();
    super::subscribe::listen(
        redis,
        channel,
        "attempt results",
        None,
        |payload: Vec<u8>| {
            let (attempts, me) = (attempts.clone(), me.clone());
            let opened = seal.decrypt_bytes(&payload).ok();
            async move {
                let Some(json) = opened else {
                    warn!("an attempt result that does not open (another data key?)");
                    return;
                };
                match serde_json::from_slice::<End>(&json) {
                    Ok(end) if end.node != me => attempts.relay_in(
                        end.attempt,
                        UserId(end.agent),
                        end.passed,
                        end.detail.as_deref(),
                    ),
                    Ok(_) => {}
                    Err(e) => warn!("unreadable attempt result: {e}"),
                }
            }
        },
    )
    .await;
}
