//! Retention settings, and finding and deleting what they say has expired.

use sqlx::Row;
use sqlx::any::AnyRow;

use crate::accounts::{EnterpriseId, UserId};
use crate::retention::RetentionSettings;
use crate::store::{Store, StoreError};

/// How many expired items one query hands back; the job asks again until none are left.
pub const BATCH: i64 = 500;

/// An expired item and the objects it owns in the object store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expired {
    pub id: String,
    pub objects: Vec<String>,
}

fn days(row: &AnyRow, column: &str) -> Result<Option<u32>, StoreError> {
    let value: Option<i64> = row.try_get(column)?;
    value
        .map(|d| u32::try_from(d).map_err(|_| StoreError::Corrupt(format!("{column} = {d}"))))
        .transpose()
}

fn settings_from_row(row: &AnyRow) -> Result<RetentionSettings, StoreError> {
    Ok(RetentionSettings {
        recordings_days: days(row, "recordings_days")?,
        verification_days: days(row, "verification_days")?,
        moderation_days: days(row, "moderation_days")?,
        face_reference_days: days(row, "face_reference_days")?,
    })
}

impl Store {
    /// An enterprise's retention; all unset when it never chose one.
    pub async fn retention_settings(
        &self,
        enterprise: &EnterpriseId,
    ) -> Result<RetentionSettings, StoreError> {
        let row = sqlx::query(
            "SELECT recordings_days, verification_days, moderation_days, face_reference_days \
             FROM retention_settings WHERE enterprise_id = $1",
        )
        .bind(enterprise.as_str())
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref()
            .map(settings_from_row)
            .transpose()
            .map(Option::unwrap_or_default)
    }

    pub async fn set_retention_settings(
        &self,
        enterprise: &EnterpriseId,
        s: &RetentionSettings,
        by: &UserId,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO retention_settings (enterprise_id, recordings_days, verification_days, \
             moderation_days, face_reference_days, updated_at, updated_by) \
             VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (enterprise_id) DO UPDATE SET \
             recordings_days = excluded.recordings_days, \
             verification_days = excluded.verification_days, \
             moderation_days = excluded.moderation_days, \
             face_reference_days = excluded.face_reference_days, \
             updated_at = excluded.updated_at, updated_by = excluded.updated_by",
        )
        .bind(enterprise.as_str())
        .bind(s.recordings_days.map(i64::from))
        .bind(s.verification_days.map(i64::from))
        .bind(s.moderation_days.map(i64::from))
        .bind(s.face_reference_days.map(i64::from))
        .bind(now_ms)
        .bind(by.as_str())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Every enterprise that set a retention, with it.
    pub async fn all_retention_settings(
        &self,
    ) -> Result<Vec<(EnterpriseId, RetentionSettings)>, StoreError> {
        let rows = sqlx::query(
            "SELECT enterprise_id, recordings_days, verification_days, moderation_days, \
             face_reference_days FROM retention_settings ORDER BY enterprise_id",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok((
                    EnterpriseId(r.try_get("enterprise_id")?),
                    settings_from_row(r)?,
                ))
            })
            .collect()
    }

    /// Finished recordings (ready or failed) of calls that started before `cutoff`.
    /// One still recording or processing is never expired: its job owns it.
    pub async fn expired_recordings(
        &self,
        enterprise: &EnterpriseId,
        cutoff: i64,
        skip: i64,
    ) -> Result<Vec<Expired>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, object_key FROM recordings WHERE enterprise_id = $1 AND started_at < $2 \
             AND state IN ('ready', 'failed') ORDER BY started_at, id LIMIT $3 OFFSET $4",
        )
        .bind(enterprise.as_str())
        .bind(cutoff)
        .bind(BATCH)
        .bind(skip)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(Expired {
                    id: r.try_get("id")?,
                    objects: vec![r.try_get("object_key")?],
                })
            })
            .collect()
    }

    /// Deletes a finished recording's row; whether it was there (a retry that began
    /// meanwhile keeps it).
    pub async fn delete_recording(&self, id: &str) -> Result<bool, StoreError> {
        let done =
            sqlx::query("DELETE FROM recordings WHERE id = $1 AND state IN ('ready', 'failed')")
                .bind(id)
                .execute(&self.pool)
                .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Deletes the verification records checked before `cutoff`; how many.
    pub async fn delete_verifications_before(
        &self,
        enterprise: &EnterpriseId,
        cutoff: i64,
    ) -> Result<u64, StoreError> {
        let done = sqlx::query(
            "DELETE FROM verification_records WHERE enterprise_id = $1 AND checked_at < $2",
        )
        .bind(enterprise.as_str())
        .bind(cutoff)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected())
    }

    /// Moderation incidents from before `cutoff`, with their evidence objects.
    pub async fn expired_incidents(
        &self,
        enterprise: &EnterpriseId,
        cutoff: i64,
        skip: i64,
    ) -> Result<Vec<Expired>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, evidence_key, mosaic_key FROM moderation_incidents \
             WHERE enterprise_id = $1 AND created_at < $2 ORDER BY created_at, id LIMIT $3 OFFSET $4",
        )
        .bind(enterprise.as_str())
        .bind(cutoff)
        .bind(BATCH)
        .bind(skip)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                let keys: [Option<String>; 2] =
                    [r.try_get("evidence_key")?, r.try_get("mosaic_key")?];
                Ok(Expired {
                    id: r.try_get("id")?,
                    objects: keys.into_iter().flatten().collect(),
                })
            })
            .collect()
    }

    pub async fn delete_incident(&self, id: &str) -> Result<bool, StoreError> {
        let done = sqlx::query("DELETE FROM moderation_incidents WHERE id = $1")
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Face references enrolled before `cutoff` (by agent id), with their kept photos.
    pub async fn expired_face_references(
        &self,
        enterprise: &EnterpriseId,
        cutoff: i64,
        skip: i64,
    ) -> Result<Vec<Expired>, StoreError> {
        let rows = sqlx::query(
            "SELECT agent_id, photo_keys FROM face_references \
             WHERE enterprise_id = $1 AND enrolled_at < $2 ORDER BY enrolled_at, agent_id LIMIT $3 OFFSET $4",
        )
        .bind(enterprise.as_str())
        .bind(cutoff)
        .bind(BATCH)
        .bind(skip)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                let keys: String = r.try_get("photo_keys")?;
                Ok(Expired {
                    id: r.try_get("agent_id")?,
                    objects: serde_json::from_str(&keys)
                        .map_err(|e| StoreError::Corrupt(format!("photo keys: {e}")))?,
                })
            })
            .collect()
    }

    /// Deletes an agent's reference if it is still the one enrolled before `cutoff`
    /// (a new enrolment in between is kept).
    pub async fn delete_face_reference_before(
        &self,
        agent: &str,
        cutoff: i64,
    ) -> Result<bool, StoreError> {
        let done =
            sqlx::query("DELETE FROM face_references WHERE agent_id = $1 AND enrolled_at < $2")
                .bind(agent)
                .bind(cutoff)
                .execute(&self.pool)
                .await?;
        Ok(done.rows_affected() == 1)
    }
}
