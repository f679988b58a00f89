//! Per-agent beauty settings.

use kefu_beauty::{BeautyParams, Preset};
use sqlx::Row;

use crate::accounts::UserId;
use crate::store::{Store, StoreError, parse_column_with};

impl Store {
    /// The agent's last confirmed settings, if any were ever saved.
    pub async fn beauty_settings(
        &self,
        user: &UserId,
    ) -> Result<Option<(Preset, BeautyParams)>, StoreError> {
        let row = sqlx::query(
            "SELECT preset, smoothing, whitening, ruddiness, sharpness FROM beauty_settings WHERE user_id = $1",
        )
        .bind(user.as_str())
        .fetch_optional(&self.pool)
        .await?;
        let Some(row) = row else { return Ok(None) };
        let preset: String = row.try_get("preset")?;
        let preset = parse_column_with(&preset, "beauty_settings.preset", |s| {
            s.parse::<Preset>().ok()
        })?;
        let params = BeautyParams {
            smoothing: row.try_get("smoothing")?,
            whitening: row.try_get("whitening")?,
            ruddiness: row.try_get("ruddiness")?,
            sharpness: row.try_get("sharpness")?,
        };
        Ok(Some((preset, params)))
    }

    /// Saves (or replaces) the agent's settings.
    pub async fn save_beauty_settings(
        &self,
        user: &UserId,
        preset: Preset,
        p: &BeautyParams,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO beauty_settings (user_id, preset, smoothing, whitening, ruddiness, sharpness, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7) \
             ON CONFLICT (user_id) DO UPDATE SET preset = excluded.preset, smoothing = excluded.smoothing, \
             whitening = excluded.whitening, ruddiness = excluded.ruddiness, sharpness = excluded.sharpness, \
             updated_at = excluded.updated_at",
        )
        .bind(user.as_str())
        .bind(preset.as_str())
        .bind(p.smoothing)
        .bind(p.whitening)
        .bind(p.ruddiness)
        .bind(p.sharpness)
        .bind(now_ms)
        .execute(&self.pool)
        .await?;
        Ok(())
    }
}
