//! Calls, their transition log, queues and customers.

use sqlx::Row;
use sqlx::any::AnyRow;

use crate::accounts::{CallId, CustomerId, EnterpriseId, GroupId, UserId};
use crate::calls::machine::{CallKind, CallState, Direction};
use crate::calls::{Call, CallEventRow};
use crate::store::{Store, StoreError, conflict};

macro_rules! call_columns {
    () => {
        "id, enterprise_id, direction, kind, state, state_json, agent_id, customer_id, group_id, \
         invite_code, created_at, state_since, ring_deadline, connected_at, ended_at"
    };
}

fn direction_text(d: Direction) -> &'static str {
    match d {
        Direction::AgentInitiated => "agent_initiated",
        Direction::CustomerInitiated => "customer_initiated",
    }
}

fn kind_text(k: CallKind) -> &'static str {
    match k {
        CallKind::Video => "video",
        CallKind::Voice => "voice",
    }
}

fn call_from_row(row: &AnyRow) -> Result<Call, StoreError> {
    let direction = match row.try_get::<String, _>("direction")?.as_str() {
        "agent_initiated" => Direction::AgentInitiated,
        "customer_initiated" => Direction::CustomerInitiated,
        other => return Err(StoreError::Corrupt(format!("calls.direction = {other:?}"))),
    };
    let kind = match row.try_get::<String, _>("kind")?.as_str() {
        "video" => CallKind::Video,
        "voice" => CallKind::Voice,
        other => return Err(StoreError::Corrupt(format!("calls.kind = {other:?}"))),
    };
    let state_json: String = row.try_get("state_json")?;
    let state = parse_state(&state_json)?;
    Ok(Call {
        id: CallId(row.try_get("id")?),
        enterprise_id: EnterpriseId(row.try_get("enterprise_id")?),
        direction,
        kind,
        state,
        agent_id: row.try_get::<Option<String>, _>("agent_id")?.map(UserId),
        customer_id: row
            .try_get::<Option<String>, _>("customer_id")?
            .map(CustomerId),
        group_id: row.try_get::<Option<String>, _>("group_id")?.map(GroupId),
        invite_code: row.try_get("invite_code")?,
        created_at: row.try_get("created_at")?,
        state_since: row.try_get("state_since")?,
        ring_deadline: row.try_get("ring_deadline")?,
        connected_at: row.try_get("connected_at")?,
        ended_at: row.try_get("ended_at")?,
    })
}

/// A stored state. Rows written before end reasons were typed (`reason` was free text
/// on `ended`, `failed`) read as a hang-up by the stored party and an internal
/// failure: what those rows meant, without a data migration.
fn parse_state(json: &str) -> Result<CallState, StoreError> {
    let corrupt = |e: serde_json::Error| StoreError::Corrupt(format!("calls.state_json: {e}"));
    match serde_json::from_str::<CallState>(json) {
        Ok(state) => Ok(state),
        Err(e) => {
            let legacy: serde_json::Value = serde_json::from_str(json).map_err(corrupt)?;
            match legacy["state"].as_str() {
                Some("ended") if legacy["reason"].is_string() => Ok(CallState::Ended {
                    by: serde_json::from_value(legacy["by"].clone()).map_err(corrupt)?,
                    reason: crate::calls::EndReason::HangUp,
                }),
                Some("failed") if legacy["reason"].is_string() => Ok(CallState::Failed {
                    kind: crate::calls::FailureKind::Internal,
                }),
                _ => Err(corrupt(e)),
            }
        }
    }
}

fn state_json(state: &CallState) -> String {
    // Invariant: CallState is plain data and always serializes.
    serde_json::to_string(state).unwrap_or_default()
}

impl Store {
    /// Stores a new call and its creation in the log (seq 0).
    pub async fn create_call(&self, call: &Call, event: &str) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        sqlx::query(concat!(
            "INSERT INTO calls (",
            call_columns!(),
            ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)"
        ))
        .bind(call.id.as_str())
        .bind(call.enterprise_id.as_str())
        .bind(direction_text(call.direction))
        .bind(kind_text(call.kind))
        .bind(call.state.name())
        .bind(state_json(&call.state))
        .bind(call.agent_id.as_ref().map(|a| a.0.clone()))
        .bind(call.customer_id.as_ref().map(|c| c.0.clone()))
        .bind(call.group_id.as_ref().map(|g| g.0.clone()))
        .bind(call.invite_code.clone())
        .bind(call.created_at)
        .bind(call.state_since)
        .bind(call.ring_deadline)
        .bind(call.connected_at)
        .bind(call.ended_at)
        .execute(&mut *tx)
        .await
        .map_err(conflict("call"))?;
        insert_event(
            &mut tx,
            &call.id,
            0,
            call.created_at,
            "new",
            &call.state,
            event,
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    pub async fn call(&self, id: &CallId) -> Result<Option<Call>, StoreError> {
        let row = sqlx::query(concat!(
            "SELECT ",
            call_columns!(),
            " FROM calls WHERE id = $1"
        ))
        .bind(id.as_str())
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(call_from_row).transpose()
    }

    pub async fn call_by_invite(&self, code: &str) -> Result<Option<Call>, StoreError> {
        let row = sqlx::query(concat!(
            "SELECT ",
            call_columns!(),
            " FROM calls WHERE invite_code = $1"
        ))
        .bind(code)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(call_from_row).transpose()
    }

    /// Writes a transition if the call is still in `expected` (someone else may have
    /// moved it meanwhile: then `Conflict`). `updated` carries the new state and fields.
    pub async fn save_transition(
        &self,
        expected: &Call,
        updated: &Call,
        event: &str,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        // The row must still be what the caller read: same state *and* same agent (a
        // request re-offered meanwhile rings at someone else in the same state).
        let done = sqlx::query(
            "UPDATE calls SET state = $1, state_json = $2, state_since = $3, agent_id = $4, \
             customer_id = $5, ring_deadline = $6, connected_at = $7, ended_at = $8 \
             WHERE id = $9 AND state_json = $10 AND COALESCE(agent_id, '') = $11",
        )
        .bind(updated.state.name())
        .bind(state_json(&updated.state))
        .bind(updated.state_since)
        .bind(updated.agent_id.as_ref().map(|a| a.0.clone()))
        .bind(updated.customer_id.as_ref().map(|c| c.0.clone()))
        .bind(updated.ring_deadline)
        .bind(updated.connected_at)
        .bind(updated.ended_at)
        .bind(updated.id.as_str())
        .bind(state_json(&expected.state))
        .bind(expected.agent_id.as_ref().map_or("", |a| a.as_str()))
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() != 1 {
            return Err(StoreError::Conflict("call state changed"));
        }
        let seq: i64 = sqlx::query(
            "SELECT COALESCE(MAX(seq), 0) + 1 AS next FROM call_events WHERE call_id = $1",
        )
        .bind(updated.id.as_str())
        .fetch_one(&mut *tx)
        .await?
        .try_get("next")?;
        insert_event(
            &mut tx,
            &updated.id,
            seq,
            now_ms,
            expected.state.name(),
            &updated.state,
            event,
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    pub async fn call_events(&self, id: &CallId) -> Result<Vec<CallEventRow>, StoreError> {
        let rows = sqlx::query(
            "SELECT seq, at, from_state, to_state, event, detail FROM call_events \
             WHERE call_id = $1 ORDER BY seq",
        )
        .bind(id.as_str())
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(CallEventRow {
                    seq: r.try_get("seq")?,
                    at: r.try_get("at")?,
                    from_state: r.try_get("from_state")?,
                    to_state: r.try_get("to_state")?,
                    event: r.try_get("event")?,
                    detail: r.try_get("detail")?,
                })
            })
            .collect()
    }

    /// Requests waiting in a group's queue, oldest first (at most `limit`).
    pub async fn waiting_requests(
        &self,
        group: &GroupId,
        limit: u32,
    ) -> Result<Vec<Call>, StoreError> {
        let rows = sqlx::query(concat!(
            "SELECT ",
            call_columns!(),
            " FROM calls WHERE group_id = $1 AND state = 'requested' ORDER BY created_at, id LIMIT $2"
        ))
        .bind(group.as_str())
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(call_from_row).collect()
    }

    /// Notes that `agent` declined `call` or let it ring out; idempotent.
    pub async fn pass_over(
        &self,
        call: &CallId,
        agent: &UserId,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO call_passed_over (call_id, agent_id, at) VALUES ($1, $2, $3) \
             ON CONFLICT (call_id, agent_id) DO NOTHING",
        )
        .bind(call.as_str())
        .bind(agent.as_str())
        .bind(now_ms)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// The agents `call` is not offered to again.
    pub async fn passed_over(&self, call: &CallId) -> Result<Vec<UserId>, StoreError> {
        let rows = sqlx::query("SELECT agent_id FROM call_passed_over WHERE call_id = $1")
            .bind(call.as_str())
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| Ok(UserId(r.try_get("agent_id")?)))
            .collect()
    }

    /// Requests waiting in a group's queue, and how many of them are older than `created_at`.
    pub async fn queue_length(&self, group: &GroupId) -> Result<u32, StoreError> {
        let n: i64 = sqlx::query(
            "SELECT COUNT(*) AS n FROM calls WHERE group_id = $1 AND state = 'requested'",
        )
        .bind(group.as_str())
        .fetch_one(&self.pool)
        .await?
        .try_get("n")?;
        Ok(u32::try_from(n).unwrap_or(u32::MAX))
    }

    /// A request's place in its queue (1 = next).
    pub async fn queue_position(&self, call: &Call) -> Result<u32, StoreError> {
        let Some(group) = &call.group_id else {
            return Ok(0);
        };
        let n: i64 = sqlx::query(
            "SELECT COUNT(*) AS n FROM calls WHERE group_id = $1 AND state = 'requested' \
             AND (created_at < $2 OR (created_at = $2 AND id <= $3))",
        )
        .bind(group.as_str())
        .bind(call.created_at)
        .bind(call.id.as_str())
        .fetch_one(&self.pool)
        .await?
        .try_get("n")?;
        Ok(u32::try_from(n).unwrap_or(u32::MAX))
    }

    /// Groups with at least one request waiting.
    pub async fn groups_with_requests(&self) -> Result<Vec<GroupId>, StoreError> {
        let rows = sqlx::query(
            "SELECT DISTINCT group_id FROM calls WHERE state = 'requested' AND group_id IS NOT NULL",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| Ok(GroupId(r.try_get("group_id")?)))
            .collect()
    }

    /// Calls ringing at an agent (customer requests assigned to them).
    pub async fn ringing_for(&self, agent: &UserId) -> Result<Vec<Call>, StoreError> {
        let rows = sqlx::query(concat!(
            "SELECT ",
            call_columns!(),
            " FROM calls WHERE agent_id = $1 AND state = 'ringing' \
              AND direction = 'customer_initiated' ORDER BY created_at"
        ))
        .bind(agent.as_str())
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(call_from_row).collect()
    }

    /// Calls still waiting for an answer whose deadline has passed.
    pub async fn calls_past_deadline(
        &self,
        now_ms: i64,
        limit: u32,
    ) -> Result<Vec<CallId>, StoreError> {
        let rows = sqlx::query(
            "SELECT id FROM calls WHERE state IN ('requested', 'inviting', 'ringing', 'connecting') \
             AND ring_deadline IS NOT NULL AND ring_deadline <= $1 ORDER BY ring_deadline LIMIT $2",
        )
        .bind(now_ms)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(|r| Ok(CallId(r.try_get("id")?))).collect()
    }

    /// Agent-initiated calls the agent created since `since_ms` (exclusive).
    pub async fn outgoing_calls_since(
        &self,
        agent: &UserId,
        since_ms: i64,
    ) -> Result<u32, StoreError> {
        let n: i64 = sqlx::query(
            "SELECT COUNT(*) AS n FROM calls WHERE agent_id = $1 \
             AND direction = 'agent_initiated' AND created_at > $2",
        )
        .bind(agent.as_str())
        .bind(since_ms)
        .fetch_one(&self.pool)
        .await?
        .try_get("n")?;
        Ok(u32::try_from(n).unwrap_or(u32::MAX))
    }

    /// Calls holding one of the agent's concurrent-call slots.
    pub async fn live_calls_of(&self, agent: &UserId) -> Result<u32, StoreError> {
        let n: i64 = sqlx::query(
            "SELECT COUNT(*) AS n FROM calls WHERE agent_id = $1 \
             AND state IN ('inviting', 'ringing', 'connecting', 'connected')",
        )
        .bind(agent.as_str())
        .fetch_one(&self.pool)
        .await?
        .try_get("n")?;
        Ok(u32::try_from(n).unwrap_or(u32::MAX))
    }

    /// Every call not yet in a final state (what a shutdown or a restart must end).
    pub async fn live_calls(&self) -> Result<Vec<CallId>, StoreError> {
        let rows = sqlx::query(
            "SELECT id FROM calls WHERE state IN \
             ('requested', 'inviting', 'ringing', 'connecting', 'connected') ORDER BY created_at",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(|r| Ok(CallId(r.try_get("id")?))).collect()
    }

    /// The agent's calls that are not over yet, with their state.
    pub async fn open_calls_of(&self, agent: &UserId) -> Result<Vec<(CallId, String)>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, state FROM calls WHERE agent_id = $1 AND state IN \
             ('inviting', 'ringing', 'connecting', 'connected') ORDER BY created_at",
        )
        .bind(agent.as_str())
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| Ok((CallId(r.try_get("id")?), r.try_get("state")?)))
            .collect()
    }

    /// The agent's calls whose media is up now.
    pub async fn connected_calls_of(&self, agent: &UserId) -> Result<Vec<CallId>, StoreError> {
        let rows = sqlx::query("SELECT id FROM calls WHERE agent_id = $1 AND state = 'connected'")
            .bind(agent.as_str())
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(|r| Ok(CallId(r.try_get("id")?))).collect()
    }

    pub async fn create_customer(
        &self,
        enterprise: &EnterpriseId,
        display_name: &str,
        consented_at: i64,
    ) -> Result<CustomerId, StoreError> {
        let id = CustomerId::generate();
        sqlx::query(
            "INSERT INTO customers (id, enterprise_id, display_name, consented_at, created_at) \
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(id.as_str())
        .bind(enterprise.as_str())
        .bind(display_name)
        .bind(consented_at)
        .bind(consented_at)
        .execute(&self.pool)
        .await?;
        Ok(id)
    }
}

async fn insert_event(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    call: &CallId,
    seq: i64,
    at: i64,
    from_state: &str,
    to: &CallState,
    event: &str,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO call_events (call_id, seq, at, from_state, to_state, event, detail) \
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(call.as_str())
    .bind(seq)
    .bind(at)
    .bind(from_state)
    .bind(to.name())
    .bind(event)
    .bind(state_json(to))
    .execute(&mut **tx)
    .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::calls::{EndReason, FailureKind, Party};

    #[test]
    fn states_stored_before_typed_end_reasons_still_read() {
        assert_eq!(
            parse_state(r#"{"state":"ended","by":"customer","reason":"hung up"}"#).expect("legacy"),
            CallState::Ended {
                by: Party::Customer,
                reason: EndReason::HangUp
            }
        );
        assert_eq!(
            parse_state(r#"{"state":"failed","reason":"media lost"}"#).expect("legacy"),
            CallState::Failed {
                kind: FailureKind::Internal
            }
        );
        let typed = CallState::Ended {
            by: Party::System,
            reason: EndReason::SystemShutdown,
        };
        assert_eq!(parse_state(&state_json(&typed)).expect("typed"), typed);
        assert!(matches!(
            parse_state(r#"{"state":"ended","reason":"x","by":"nobody"}"#),
            Err(StoreError::Corrupt(_))
        ));
        assert!(matches!(
            parse_state("not json"),
            Err(StoreError::Corrupt(_))
        ));
    }
}
