//! Audit log queries.

use sqlx::Row;

use super::AuditEntry;
use crate::accounts::{EnterpriseId, UserId};
use crate::store::{Store, StoreError};

impl Store {
    pub async fn insert_audit(&self, e: &AuditEntry) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO audit_log (id, enterprise_id, actor_id, actor_role, action, target_id, at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(e.id.clone())
        .bind(e.enterprise_id.as_str())
        .bind(e.actor_id.0.clone())
        .bind(e.actor_role.clone())
        .bind(e.action.clone())
        .bind(e.target_id.clone())
        .bind(e.at)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub async fn audit_entries(
        &self,
        enterprise: &EnterpriseId,
        limit: u32,
    ) -> Result<Vec<AuditEntry>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, enterprise_id, actor_id, actor_role, action, target_id, at FROM audit_log \
             WHERE enterprise_id = $1 ORDER BY at DESC LIMIT $2",
        )
        .bind(enterprise.as_str())
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(AuditEntry {
                    id: r.try_get("id")?,
                    enterprise_id: EnterpriseId(r.try_get("enterprise_id")?),
                    actor_id: UserId(r.try_get("actor_id")?),
                    actor_role: r.try_get("actor_role")?,
                    action: r.try_get("action")?,
                    target_id: r.try_get("target_id")?,
                    at: r.try_get("at")?,
                })
            })
            .collect()
    }
}
