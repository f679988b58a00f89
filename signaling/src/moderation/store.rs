//! Screening settings and incidents in the database.

use kefu_media_server::moderation::ModerationSettings;
use sqlx::Row;
use sqlx::any::AnyRow;

use crate::accounts::{EnterpriseId, UserId};
use crate::store::{Store, StoreError};

/// One moderation action as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct Incident {
    pub id: String,
    pub enterprise_id: EnterpriseId,
    pub call_id: String,
    pub agent_id: Option<UserId>,
    pub agent_name: Option<String>,
    /// `agent` or `customer`.
    pub party: String,
    /// `blurred` or `ended`.
    pub action: String,
    pub scores: Vec<f32>,
    pub evidence_key: Option<String>,
    pub mosaic_key: Option<String>,
    pub created_at: i64,
    /// `pending`, `confirmed` or `dismissed`.
    pub review: String,
    pub review_note: Option<String>,
    pub reviewed_by: Option<UserId>,
    pub reviewed_at: Option<i64>,
}

/// What the incident list is narrowed to.
#[derive(Debug, Clone, Default)]
pub struct IncidentFilter {
    pub from: Option<i64>,
    pub to: Option<i64>,
    pub agent: Option<UserId>,
    pub review: Option<String>,
}

/// `SELECT` of every incident column (and the agent's name), then `$rest`.
macro_rules! select_incidents {
    ($rest:literal) => {
        concat!(
            "SELECT i.id, i.enterprise_id, i.call_id, i.agent_id, u.real_name AS agent_name, \
             i.party, i.action, i.scores, i.evidence_key, i.mosaic_key, i.created_at, \
             i.review, i.review_note, i.reviewed_by, i.reviewed_at \
             FROM moderation_incidents i LEFT JOIN users u ON u.id = i.agent_id ",
            $rest
        )
    };
}

/// Incidents listed at most in one answer.
const LIST_LIMIT: i64 = 500;

impl Store {
    /// The enterprise's settings (the defaults when never set).
    pub async fn moderation_settings(
        &self,
        enterprise: &EnterpriseId,
    ) -> Result<ModerationSettings, StoreError> {
        let row = sqlx::query("SELECT settings FROM moderation_settings WHERE enterprise_id = $1")
            .bind(enterprise.as_str())
            .fetch_optional(&self.pool)
            .await?;
        match row {
            None => Ok(ModerationSettings::default()),
            Some(r) => {
                let text: String = r.try_get("settings")?;
                serde_json::from_str(&text)
                    .map_err(|e| StoreError::Corrupt(format!("moderation settings: {e}")))
            }
        }
    }

    pub async fn set_moderation_settings(
        &self,
        enterprise: &EnterpriseId,
        settings: &ModerationSettings,
        by: &UserId,
        now: i64,
    ) -> Result<(), StoreError> {
        let text = serde_json::to_string(settings)
            .map_err(|e| StoreError::Corrupt(format!("moderation settings: {e}")))?;
        sqlx::query(
            "INSERT INTO moderation_settings (enterprise_id, settings, updated_at, updated_by) \
             VALUES ($1, $2, $3, $4) ON CONFLICT (enterprise_id) DO UPDATE SET \
             settings = excluded.settings, updated_at = excluded.updated_at, \
             updated_by = excluded.updated_by",
        )
        .bind(enterprise.as_str())
        .bind(text)
        .bind(now)
        .bind(by.as_str())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub async fn insert_incident(&self, i: &Incident) -> Result<(), StoreError> {
        let scores = serde_json::to_string(&i.scores)
            .map_err(|e| StoreError::Corrupt(format!("scores: {e}")))?;
        sqlx::query(
            "INSERT INTO moderation_incidents (id, enterprise_id, call_id, agent_id, party, \
             action, scores, evidence_key, mosaic_key, created_at, review) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, 'pending')",
        )
        .bind(&i.id)
        .bind(i.enterprise_id.as_str())
        .bind(&i.call_id)
        .bind(i.agent_id.as_ref().map(|a| a.as_str().to_owned()))
        .bind(&i.party)
        .bind(&i.action)
        .bind(scores)
        .bind(i.evidence_key.clone())
        .bind(i.mosaic_key.clone())
        .bind(i.created_at)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// One incident of `enterprise` (another enterprise's is reported as unknown).
    pub async fn incident(
        &self,
        enterprise: &EnterpriseId,
        id: &str,
    ) -> Result<Option<Incident>, StoreError> {
        let sql = select_incidents!("WHERE i.id = $1 AND i.enterprise_id = $2");
        let row = sqlx::query(sql)
            .bind(id)
            .bind(enterprise.as_str())
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(from_row).transpose()
    }

    /// Newest first.
    pub async fn incidents(
        &self,
        enterprise: &EnterpriseId,
        f: &IncidentFilter,
    ) -> Result<Vec<Incident>, StoreError> {
        let sql = select_incidents!(
            "WHERE i.enterprise_id = $1 AND i.created_at >= $2 AND i.created_at < $3 \
             AND ($4 = '' OR i.agent_id = $4) AND ($5 = '' OR i.review = $5) \
             ORDER BY i.created_at DESC LIMIT $6"
        );
        let rows = sqlx::query(sql)
            .bind(enterprise.as_str())
            .bind(f.from.unwrap_or(i64::MIN))
            .bind(f.to.unwrap_or(i64::MAX))
            .bind(f.agent.as_ref().map_or("", |a| a.as_str()).to_owned())
            .bind(f.review.clone().unwrap_or_default())
            .bind(LIST_LIMIT)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(from_row).collect()
    }

    /// Records a reviewer's decision; false when the incident is unknown.
    pub async fn review_incident(
        &self,
        enterprise: &EnterpriseId,
        id: &str,
        decision: &str,
        note: Option<&str>,
        by: &UserId,
        now: i64,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE moderation_incidents SET review = $1, review_note = $2, reviewed_by = $3, \
             reviewed_at = $4 WHERE id = $5 AND enterprise_id = $6",
        )
        .bind(decision)
        .bind(note.map(str::to_owned))
        .bind(by.as_str())
        .bind(now)
        .bind(id)
        .bind(enterprise.as_str())
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() > 0)
    }

    /// Whether any incident names `call`.
    pub async fn call_was_moderated(&self, call: &str) -> Result<bool, StoreError> {
        let row = sqlx::query("SELECT COUNT(*) AS n FROM moderation_incidents WHERE call_id = $1")
            .bind(call)
            .fetch_one(&self.pool)
            .await?;
        Ok(row.try_get::<i64, _>("n")? > 0)
    }
}

fn from_row(r: &AnyRow) -> Result<Incident, StoreError> {
    let scores: String = r.try_get("scores")?;
    Ok(Incident {
        id: r.try_get("id")?,
        enterprise_id: EnterpriseId(r.try_get("enterprise_id")?),
        call_id: r.try_get("call_id")?,
        agent_id: r.try_get::<Option<String>, _>("agent_id")?.map(UserId),
        agent_name: r.try_get("agent_name")?,
        party: r.try_get("party")?,
        action: r.try_get("action")?,
        scores: serde_json::from_str(&scores)
            .map_err(|_| StoreError::Corrupt(format!("scores = {scores:?}")))?,
        evidence_key: r.try_get("evidence_key")?,
        mosaic_key: r.try_get("mosaic_key")?,
        created_at: r.try_get("created_at")?,
        review: r.try_get("review")?,
        review_note: r.try_get("review_note")?,
        reviewed_by: r.try_get::<Option<String>, _>("reviewed_by")?.map(UserId),
        reviewed_at: r.try_get("reviewed_at")?,
    })
}
