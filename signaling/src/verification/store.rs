//! Verification records.

use sqlx::Row;
use sqlx::any::AnyRow;

use super::{VerificationFilter, VerificationRecord};
use crate::accounts::{EnterpriseId, UserId, VerificationId};
use crate::store::{Store, StoreError};

fn verification_from_row(row: &AnyRow) -> Result<VerificationRecord, StoreError> {
    Ok(VerificationRecord {
        id: VerificationId(row.try_get("id")?),
        enterprise_id: EnterpriseId(row.try_get("enterprise_id")?),
        agent_id: UserId(row.try_get("agent_id")?),
        agent_name: row.try_get("agent_name")?,
        id_number_enc: row.try_get("id_number_enc")?,
        passed: row.try_get::<i64, _>("passed")? != 0,
        checked_at: row.try_get("checked_at")?,
        passed_at: row.try_get("passed_at")?,
        failure_reason: row.try_get("failure_reason")?,
        failure_detail: row.try_get("failure_detail")?,
        channel: row.try_get("channel")?,
    })
}

impl Store {
    pub async fn insert_verification(&self, r: &VerificationRecord) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO verification_records (id, enterprise_id, agent_id, agent_name, id_number_enc, \
             passed, checked_at, passed_at, failure_reason, failure_detail, channel) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
        )
        .bind(r.id.as_str())
        .bind(r.enterprise_id.as_str())
        .bind(r.agent_id.as_str())
        .bind(&r.agent_name)
        .bind(r.id_number_enc.clone())
        .bind(i64::from(r.passed))
        .bind(r.checked_at)
        .bind(r.passed_at)
        .bind(r.failure_reason.clone())
        .bind(r.failure_detail.clone())
        .bind(&r.channel)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// When the agent last passed a verification.
    pub async fn last_passed_verification(
        &self,
        agent: &UserId,
    ) -> Result<Option<i64>, StoreError> {
        let row = sqlx::query(
            "SELECT MAX(passed_at) AS t FROM verification_records WHERE agent_id = $1 AND passed = 1",
        )
        .bind(agent.as_str())
        .fetch_one(&self.pool)
        .await?;
        Ok(row.try_get("t")?)
    }

    /// Failed checks of an agent at or after `since`: how many, and the latest's time.
    pub async fn failures_since(
        &self,
        agent: &UserId,
        since: i64,
    ) -> Result<(u32, Option<i64>), StoreError> {
        let row = sqlx::query(
            "SELECT COUNT(*) AS n, MAX(checked_at) AS t FROM verification_records \
             WHERE agent_id = $1 AND passed = 0 AND checked_at >= $2",
        )
        .bind(agent.as_str())
        .bind(since)
        .fetch_one(&self.pool)
        .await?;
        let n: i64 = row.try_get("n")?;
        Ok((u32::try_from(n).unwrap_or(u32::MAX), row.try_get("t")?))
    }

    /// An enterprise's verification records, newest first, filtered.
    pub async fn verifications(
        &self,
        enterprise: &EnterpriseId,
        f: &VerificationFilter,
        limit: u32,
    ) -> Result<Vec<VerificationRecord>, StoreError> {
        // Unused filters become always-true comparisons, so the SQL text stays static.
        let rows = sqlx::query(
            "SELECT id, enterprise_id, agent_id, agent_name, id_number_enc, passed, checked_at, passed_at, \
             failure_reason, failure_detail, channel FROM verification_records WHERE enterprise_id = $1 \
             AND ($2 = '' OR agent_id = $2) AND checked_at >= $3 AND checked_at < $4 \
             AND ($5 < 0 OR passed = $5) ORDER BY checked_at DESC LIMIT $6",
        )
        .bind(enterprise.as_str())
        .bind(f.agent_id.as_ref().map(|a| a.0.clone()).unwrap_or_default())
        .bind(f.from.unwrap_or(i64::MIN))
        .bind(f.to.unwrap_or(i64::MAX))
        .bind(f.passed.map(i64::from).unwrap_or(-1))
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(verification_from_row).collect()
    }
}
