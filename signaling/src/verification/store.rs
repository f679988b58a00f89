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
    })
}

impl Store {
    pub async fn insert_verification(&self, r: &VerificationRecord) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO verification_records (id, enterprise_id, agent_id, agent_name, id_number_enc, \
             passed, checked_at, passed_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(r.id.as_str())
        .bind(r.enterprise_id.as_str())
        .bind(r.agent_id.as_str())
        .bind(&r.agent_name)
        .bind(r.id_number_enc.clone())
        .bind(i64::from(r.passed))
        .bind(r.checked_at)
        .bind(r.passed_at)
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

    /// An enterprise's verification records, newest first, filtered.
    pub async fn verifications(
        &self,
        enterprise: &EnterpriseId,
        f: &VerificationFilter,
        limit: u32,
    ) -> Result<Vec<VerificationRecord>, StoreError> {
        // Unused filters become always-true comparisons, so the SQL text stays static.
        let rows = sqlx::query(
            "SELECT id, enterprise_id, agent_id, agent_name, id_number_enc, passed, checked_at, passed_at \
             FROM verification_records WHERE enterprise_id = $1 \
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
