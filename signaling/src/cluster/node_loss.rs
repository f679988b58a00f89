//! What signaling nodes do when a node goes silent (no heartbeat for
//! `cluster.node_timeout_ms`, e.g. `kill -9` or a machine lost): the calls whose media
//! it held cannot go on, so they end with reason `node_lost` (both pages are told),
//! and the node leaves the registry. The rooms it held stay listed under it: when it
//! comes back, it recovers their recordings from its spool (startup `recover_node`).
//! One signaling node handles each loss (a lease per lost node).

use std::collections::HashMap;
use std::time::{Duration, Instant};

use kefu_proto::EndReason;
use tracing::{info, warn};

use super::lease::Lease;
use super::redis::{RedisLease, RedisNodes, RedisPlacement};
use crate::accounts::CallId;
use crate::calls::machine::CallEvent;
use crate::state::AppState;

/// The times a loss is judged by.
#[derive(Debug, Clone, Copy)]
pub struct LossTimes {
    /// How often the registry is read (the heartbeat period).
    pub period: Duration,
    /// Silence this long makes a node lost (`cluster.node_timeout_ms`): its entry
    /// expires.
    pub timeout: Duration,
    /// How long an expired entry must stay missing, read after read, before its node
    /// is judged lost: the longest a live node may take to beat again once Redis
    /// answers. A command in flight when Redis came back runs into its deadline,
    /// the reconnect may too, then the next beat is a period away.
    pub rejoin: Duration,
}

impl LossTimes {
    /// From the cluster settings: `rejoin` is a period plus two Redis deadlines.
    pub fn new(period: Duration, timeout: Duration, redis_timeout: Duration) -> Self {
        Self {
            period,
            timeout,
            rejoin: period + 2 * redis_timeout,
        }
    }
}

/// Which silent nodes are lost, from what the registry reads gave. Pure: the clock
/// comes in. An expired entry alone proves nothing: a Redis restart expires them
/// all, and a watcher may not even see the outage (it reads between beats). So a
/// node is lost only once its entry has been missing in every read for `rejoin`,
/// with Redis answering all along and for at least a `timeout` (a watcher that just
/// started has not seen a live node's beat yet).
#[derive(Debug)]
pub struct LossJudge {
    times: LossTimes,
    answering_since: Option<Instant>,
    /// Each silent node, from the first read that found it so.
    silent_since: HashMap<String, Instant>,
}

impl LossJudge {
    pub fn new(times: LossTimes) -> Self {
        Self {
            times,
            answering_since: None,
            silent_since: HashMap::new(),
        }
    }

    /// A read of the registry failed: Redis is away, every count starts again.
    pub fn unanswered(&mut self) {
        self.answering_since = None;
        self.silent_since.clear();
    }

    /// A read at `now` found `silent` (registered, entry expired): the nodes lost.
    pub fn read(&mut self, now: Instant, silent: &[String]) -> Vec<String> {
        let since = *self.answering_since.get_or_insert(now);
        self.silent_since.retain(|node, _| silent.contains(node));
        for node in silent {
            self.silent_since.entry(node.clone()).or_insert(now);
        }
        if now.saturating_duration_since(since) < self.times.timeout {
            return Vec::new();
        }
        let mut lost: Vec<String> = self
            .silent_since
            .iter()
            .filter(|(_, from)| now.saturating_duration_since(**from) >= self.times.rejoin)
            .map(|(node, _)| node.clone())
            .collect();
        lost.sort();
        lost
    }
}

/// Watches the registry every `times.period` until the task is aborted, ending the
/// calls of the nodes [`LossJudge`] finds lost.
pub async fn watch(
    state: AppState,
    nodes: RedisNodes,
    placement: RedisPlacement,
    lease: RedisLease,
    times: LossTimes,
) {
    let mut judge = LossJudge::new(times);
    loop {
        tokio::time::sleep(times.period).await;
        let lost = match nodes.view().await {
            Ok(view) => judge.read(Instant::now(), &view.silent),
            // Redis away: nothing can be judged; the heartbeats are missing too.
            Err(_) => {
                judge.unanswered();
                continue;
            }
        };
        for node in lost {
            let Ok(_held) = lease.acquire(&format!("node-loss:{node}")).await else {
                continue;
            };
            // Another signaling node may have handled it meanwhile.
            match nodes.view().await {
                Ok(view) if view.silent.contains(&node) => {}
                _ => continue,
            }
            let rooms = match placement.rooms_of(&node).await {
                Ok(rooms) => rooms,
                Err(e) => {
                    warn!(%node, "rooms of a lost node unreadable: {e}");
                    continue;
                }
            };
            let mut ended = 0;
            for room in &rooms {
                let event = CallEvent::Terminate {
                    reason: EndReason::NodeLost,
                };
                if state
                    .calls
                    .apply(&CallId(room.clone()), event, crate::clock::now_ms())
                    .await
                    .is_ok()
                {
                    ended += 1;
                }
            }
            if let Err(e) = nodes.forget(&node).await {
                warn!(%node, "lost node not removed from the registry: {e}");
                continue;
            }
            state.metrics.count_node_lost();
            warn!(%node, calls = ended, "node lost: the calls whose media it held ended");
            info!(%node, rooms = rooms.len(), "its recordings are recovered when it comes back");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    /// The test cluster's settings: beats every 200 ms, an entry lives 1 s, Redis
    /// commands get 1 s: a silent node is lost after 2.2 s of missing entry.
    fn judge() -> LossJudge {
        LossJudge::new(LossTimes::new(200 * MS, 1000 * MS, 1000 * MS))
    }

    fn nodes(ids: &[&str]) -> Vec<String> {
        ids.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn rejoin_is_a_period_and_two_redis_deadlines() {
        let times = LossTimes::new(200 * MS, 1000 * MS, 1000 * MS);
        assert_eq!(times.rejoin, 2200 * MS);
    }

    #[test]
    fn a_node_silent_in_every_read_for_the_rejoin_time_is_lost() {
        let start = Instant::now();
        let mut judge = judge();
        assert!(judge.read(start, &[]).is_empty());
        // Killed: its entry expires 1 s later and stays missing.
        let expired = start + 5000 * MS;
        for step in 0..11 {
            let now = expired + step * 200 * MS;
            assert!(
                judge.read(now, &nodes(&["media-1"])).is_empty(),
                "read {step}"
            );
        }
        assert_eq!(
            judge.read(expired + 2200 * MS, &nodes(&["media-1", "media-2"])),
            nodes(&["media-1"]),
            "only the node silent long enough"
        );
    }

    #[test]
    fn a_restart_the_watcher_never_saw_loses_no_live_node() {
        // Redis restarts between two reads: every entry expired, and one node's
        // reconnect runs into its deadline (what the Redis-restart fault caught: a
        // live node judged lost 1.1 s after Redis came back).
        let start = Instant::now();
        let mut judge = judge();
        assert!(judge.read(start, &[]).is_empty());
        let back = start + 5000 * MS;
        for step in 0..=6 {
            let now = back + step * 200 * MS;
            assert!(
                judge.read(now, &nodes(&["media-1"])).is_empty(),
                "read {step}"
            );
        }
        // It beats again: its silence is forgotten, a later one counts afresh.
        assert!(judge.read(back + 1400 * MS, &[]).is_empty());
        assert!(
            judge
                .read(back + 1600 * MS, &nodes(&["media-1"]))
                .is_empty()
        );
        assert!(
            judge
                .read(back + 3700 * MS, &nodes(&["media-1"]))
                .is_empty()
        );
        assert_eq!(
            judge.read(back + 3800 * MS, &nodes(&["media-1"])),
            nodes(&["media-1"])
        );
    }

    #[test]
    fn an_unanswered_read_starts_every_count_again() {
        let start = Instant::now();
        let mut judge = judge();
        assert!(judge.read(start, &nodes(&["media-1"])).is_empty());
        judge.unanswered();
        let back = start + 3000 * MS;
        // Answering again, but not yet for a whole timeout, nor silent for rejoin.
        assert!(judge.read(back, &nodes(&["media-1"])).is_empty());
        assert!(
            judge
                .read(back + 2199 * MS, &nodes(&["media-1"]))
                .is_empty()
        );
        assert_eq!(
            judge.read(back + 2200 * MS, &nodes(&["media-1"])),
            nodes(&["media-1"])
        );
    }

    #[test]
    fn a_watcher_just_started_waits_a_timeout_before_judging() {
        // Judging needs Redis answering for a timeout even when the rejoin time
        // is shorter (a large heartbeat timeout, fast Redis commands).
        let mut judge = LossJudge::new(LossTimes::new(100 * MS, 5000 * MS, 10 * MS));
        let start = Instant::now();
        assert!(judge.read(start, &nodes(&["media-1"])).is_empty());
        assert!(
            judge
                .read(start + 4999 * MS, &nodes(&["media-1"]))
                .is_empty()
        );
        assert_eq!(
            judge.read(start + 5000 * MS, &nodes(&["media-1"])),
            nodes(&["media-1"])
        );
    }
}
