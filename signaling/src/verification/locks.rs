//! Repeated failures: a short back-off after each, and 5 failures within 10 minutes
//! lock verification for that agent until an admin clears it. Policy is pure; the
//! store keeps when a lock was set and cleared.

use sqlx::Row;

use crate::accounts::UserId;
use crate::store::{Store, StoreError};

pub const LOCK_AFTER_FAILURES: u32 = 5;
pub const LOCK_WINDOW_MS: i64 = 10 * 60 * 1000;
/// After a failure, the next attempt may start this much later.
pub const BACKOFF_MS: i64 = 3_000;

/// What the policy decides on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LockFacts {
    pub locked: bool,
    /// Failures counted since the window start (or the last clearing, if later).
    pub recent_failures: u32,
    pub last_failure_at: Option<i64>,
}

/// Why an attempt may not start now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    Locked,
    BackOff { retry_after_ms: i64 },
}

pub fn may_attempt(facts: LockFacts, now_ms: i64) -> Result<(), Refusal> {
    if facts.locked {
        return Err(Refusal::Locked);
    }
    match facts.last_failure_at {
        Some(t) if now_ms < t + BACKOFF_MS => Err(Refusal::BackOff {
            retry_after_ms: t + BACKOFF_MS - now_ms,
        }),
        _ => Ok(()),
    }
}

/// After a failure is recorded: does this one lock?
pub fn locks_now(recent_failures_including_this: u32) -> bool {
    recent_failures_including_this >= LOCK_AFTER_FAILURES
}

/// The lock row: when set, when cleared.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LockRow {
    pub locked_at: Option<i64>,
    pub cleared_at: Option<i64>,
}

impl LockRow {
    pub fn is_locked(&self) -> bool {
        match (self.locked_at, self.cleared_at) {
            (Some(l), Some(c)) => l > c,
            (Some(_), None) => true,
            _ => false,
        }
    }
}

/// Reads the facts for `agent` at `now_ms`.
pub async fn facts(store: &Store, agent: &UserId, now_ms: i64) -> Result<LockFacts, StoreError> {
    let row = store.verification_lock(agent).await?;
    let since = (now_ms - LOCK_WINDOW_MS).max(row.cleared_at.map_or(i64::MIN, |c| c + 1));
    let (recent_failures, last_failure_at) = store.failures_since(agent, since).await?;
    Ok(LockFacts {
        locked: row.is_locked(),
        recent_failures,
        last_failure_at,
    })
}

impl Store {
    pub async fn verification_lock(&self, agent: &UserId) -> Result<LockRow, StoreError> {
        let row =
            sqlx::query("SELECT locked_at, cleared_at FROM verification_locks WHERE agent_id = $1")
                .bind(agent.as_str())
                .fetch_optional(&self.pool)
                .await?;
        Ok(match row {
            Some(r) => LockRow {
                locked_at: r.try_get("locked_at")?,
                cleared_at: r.try_get("cleared_at")?,
            },
            None => LockRow::default(),
        })
    }

    pub async fn lock_verification(&self, agent: &UserId, now_ms: i64) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO verification_locks (agent_id, locked_at) VALUES ($1, $2) \
             ON CONFLICT (agent_id) DO UPDATE SET locked_at = excluded.locked_at",
        )
        .bind(agent.as_str())
        .bind(now_ms)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Clears a lock; failures before now no longer count. `false`: nothing was locked.
    pub async fn clear_verification_lock(
        &self,
        agent: &UserId,
        by: &UserId,
        now_ms: i64,
    ) -> Result<bool, StoreError> {
        if !self.verification_lock(agent).await?.is_locked() {
            return Ok(false);
        }
        sqlx::query(
            "UPDATE verification_locks SET cleared_at = $1, cleared_by = $2 WHERE agent_id = $3",
        )
        .bind(now_ms)
        .bind(by.as_str())
        .bind(agent.as_str())
        .execute(&self.pool)
        .await?;
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failure_backs_off_for_a_few_seconds() {
        let f = LockFacts {
            locked: false,
            recent_failures: 1,
            last_failure_at: Some(10_000),
        };
        assert_eq!(
            may_attempt(f, 11_000),
            Err(Refusal::BackOff {
                retry_after_ms: 2_000
            })
        );
        assert_eq!(may_attempt(f, 13_000), Ok(()));
    }

    #[test]
    fn the_fifth_failure_locks_and_a_lock_holds_until_cleared() {
        assert!(!locks_now(4));
        assert!(locks_now(5));
        let locked = LockFacts {
            locked: true,
            recent_failures: 5,
            last_failure_at: Some(0),
        };
        assert_eq!(may_attempt(locked, 1_000_000_000), Err(Refusal::Locked));
    }

    #[test]
    fn a_lock_row_is_locked_when_set_after_its_last_clearing() {
        assert!(!LockRow::default().is_locked());
        let set = LockRow {
            locked_at: Some(5),
            cleared_at: None,
        };
        assert!(set.is_locked());
        assert!(
            !LockRow {
                cleared_at: Some(6),
                ..set
            }
            .is_locked()
        );
        assert!(
            LockRow {
                locked_at: Some(7),
                cleared_at: Some(6)
            }
            .is_locked()
        );
    }
}
