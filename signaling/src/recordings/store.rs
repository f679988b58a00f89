//! The recordings catalogue.

use sqlx::Row;
use sqlx::any::AnyRow;

use crate::accounts::{CallId, CustomerId, EnterpriseId, UserId};
use crate::recordings::{Recording, RecordingFilter, RecordingState};
use crate::store::{Store, StoreError};
use kefu_recorder::{FailureKind, RecordingKind};

macro_rules! recording_columns {
    () => {
        "id, enterprise_id, call_id, agent_id, customer_id, kind, state, failure_kind, \
         failure_reason, object_key, display_name, started_at, ended_at, duration_ms, size_bytes"
    };
}

fn recording_from_row(row: &AnyRow) -> Result<Recording, StoreError> {
    let kind: String = row.try_get("kind")?;
    let state: String = row.try_get("state")?;
    let failure: Option<String> = row.try_get("failure_kind")?;
    Ok(Recording {
        id: row.try_get("id")?,
        enterprise_id: EnterpriseId(row.try_get("enterprise_id")?),
        call_id: CallId(row.try_get("call_id")?),
        agent_id: row.try_get::<Option<String>, _>("agent_id")?.map(UserId),
        customer_id: row
            .try_get::<Option<String>, _>("customer_id")?
            .map(CustomerId),
        kind: RecordingKind::parse(&kind)
            .ok_or_else(|| StoreError::Corrupt(format!("recordings.kind = {kind:?}")))?,
        state: RecordingState::parse(&state)
            .ok_or_else(|| StoreError::Corrupt(format!("recordings.state = {state:?}")))?,
        failure_kind: match failure.as_deref() {
            None => None,
            Some("recording") => Some(FailureKind::Recording),
            Some("transcoding") => Some(FailureKind::Transcoding),
            Some("upload") => Some(FailureKind::Upload),
            Some(other) => {
                return Err(StoreError::Corrupt(format!(
                    "recordings.failure_kind = {other:?}"
                )));
            }
        },
        failure_reason: row.try_get("failure_reason")?,
        object_key: row.try_get("object_key")?,
        display_name: row.try_get("display_name")?,
        started_at: row.try_get("started_at")?,
        ended_at: row.try_get("ended_at")?,
        duration_ms: row.try_get("duration_ms")?,
        size_bytes: row.try_get("size_bytes")?,
    })
}

impl Store {
    pub async fn set_recording_enabled(
        &self,
        enterprise: &EnterpriseId,
        on: bool,
    ) -> Result<(), StoreError> {
        sqlx::query("UPDATE enterprises SET recording_enabled = $1 WHERE id = $2")
            .bind(i64::from(on))
            .bind(enterprise.as_str())
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    pub async fn insert_recording(&self, r: &Recording, now_ms: i64) -> Result<(), StoreError> {
        sqlx::query(concat!(
            "INSERT INTO recordings (",
            recording_columns!(),
            ", updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)"
        ))
        .bind(r.id.clone())
        .bind(r.enterprise_id.as_str())
        .bind(r.call_id.0.clone())
        .bind(r.agent_id.as_ref().map(|a| a.0.clone()))
        .bind(r.customer_id.as_ref().map(|c| c.0.clone()))
        .bind(r.kind.as_str())
        .bind(r.state.as_str())
        .bind(r.failure_kind.map(|k| k.as_str()))
        .bind(r.failure_reason.clone())
        .bind(r.object_key.clone())
        .bind(r.display_name.clone())
        .bind(r.started_at)
        .bind(r.ended_at)
        .bind(r.duration_ms)
        .bind(r.size_bytes)
        .bind(now_ms)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub async fn recording(&self, id: &str) -> Result<Option<Recording>, StoreError> {
        let row = sqlx::query(concat!(
            "SELECT ",
            recording_columns!(),
            " FROM recordings WHERE id = $1"
        ))
        .bind(id.to_owned())
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(recording_from_row).transpose()
    }

    /// The call's recording that is still capturing, if any.
    pub async fn live_recording_of(&self, call: &CallId) -> Result<Option<Recording>, StoreError> {
        let row = sqlx::query(concat!(
            "SELECT ",
            recording_columns!(),
            " FROM recordings WHERE call_id = $1 AND state = 'recording' ORDER BY started_at DESC LIMIT 1"
        ))
        .bind(call.0.clone())
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(recording_from_row).transpose()
    }

    /// Recordings a previous process left unfinished (recording or processing).
    pub async fn unfinished_recordings(&self) -> Result<Vec<Recording>, StoreError> {
        let rows = sqlx::query(concat!(
            "SELECT ",
            recording_columns!(),
            " FROM recordings WHERE state IN ('recording', 'processing') ORDER BY started_at"
        ))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(recording_from_row).collect()
    }

    /// Hang-up: capture is over, the tail is being stored.
    pub async fn mark_recording_processing(
        &self,
        id: &str,
        ended_at: i64,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE recordings SET state = 'processing', ended_at = COALESCE(ended_at, $1), updated_at = $1 \
             WHERE id = $2 AND state IN ('recording', 'failed')",
        )
        .bind(ended_at)
        .bind(id.to_owned())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub async fn mark_recording_ready(
        &self,
        id: &str,
        duration_ms: i64,
        size_bytes: i64,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE recordings SET state = 'ready', duration_ms = $1, size_bytes = $2, failure_kind = NULL, \
             failure_reason = NULL, ended_at = COALESCE(ended_at, $3), updated_at = $3 WHERE id = $4",
        )
        .bind(duration_ms)
        .bind(size_bytes)
        .bind(now_ms)
        .bind(id.to_owned())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub async fn mark_recording_failed(
        &self,
        id: &str,
        kind: FailureKind,
        reason: &str,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE recordings SET state = 'failed', failure_kind = $1, failure_reason = $2, \
             ended_at = COALESCE(ended_at, $3), updated_at = $3 WHERE id = $4",
        )
        .bind(kind.as_str())
        .bind(reason.to_owned())
        .bind(now_ms)
        .bind(id.to_owned())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// An enterprise's recordings, newest first. Unused filters are always-true
    /// comparisons, so the SQL text stays static.
    pub async fn recordings(
        &self,
        enterprise: &EnterpriseId,
        f: &RecordingFilter,
        limit: u32,
    ) -> Result<Vec<Recording>, StoreError> {
        let rows = sqlx::query(concat!(
            "SELECT ",
            recording_columns!(),
            " FROM recordings WHERE enterprise_id = $1 \
             AND ($2 = '' OR agent_id = $2) AND ($3 = '' OR customer_id = $3) \
             AND started_at >= $4 AND started_at < $5 AND ($6 = '' OR kind = $6) \
             AND ($7 = '' OR state = $7) AND ($8 = '' OR call_id = $8) \
             ORDER BY started_at DESC LIMIT $9"
        ))
        .bind(enterprise.as_str())
        .bind(f.agent_id.as_ref().map(|a| a.0.clone()).unwrap_or_default())
        .bind(
            f.customer_id
                .as_ref()
                .map(|c| c.0.clone())
                .unwrap_or_default(),
        )
        .bind(f.from.unwrap_or(i64::MIN))
        .bind(f.to.unwrap_or(i64::MAX))
        .bind(f.kind.map(|k| k.as_str()).unwrap_or_default())
        .bind(f.state.map(|s| s.as_str()).unwrap_or_default())
        .bind(f.call_id.as_ref().map(|c| c.0.clone()).unwrap_or_default())
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(recording_from_row).collect()
    }
}

impl Store {
    /// Display names of an enterprise's customers among `ids`.
    pub async fn customer_name(
        &self,
        enterprise: &EnterpriseId,
        id: &CustomerId,
    ) -> Result<Option<String>, StoreError> {
        let row =
            sqlx::query("SELECT display_name FROM customers WHERE id = $1 AND enterprise_id = $2")
                .bind(id.0.clone())
                .bind(enterprise.as_str())
                .fetch_optional(&self.pool)
                .await?;
        row.map(|r| r.try_get::<String, _>("display_name"))
            .transpose()
            .map_err(Into::into)
    }
}
