//! Enrolled face references: an agent's templates, encrypted at rest with the data key
//! (AES-256-GCM, like ID numbers); reference photos only when the enterprise keeps
//! them, encrypted, in the object store under an admin-only prefix.

use kefu_vision::Embedding;
use sqlx::Row;

use crate::accounts::secrets::DataKey;
use crate::accounts::{EnterpriseId, UserId};
use crate::store::{Store, StoreError};

/// A reference as stored: templates still encrypted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredReference {
    pub agent_id: UserId,
    pub enterprise_id: EnterpriseId,
    pub templates_enc: String,
    pub photo_count: u32,
    pub photo_keys: Vec<String>,
    pub enrolled_at: i64,
    pub enrolled_by: UserId,
}

/// The object key prefix of kept reference photos (never handed out as links).
pub const PHOTO_PREFIX: &str = "enrollment/";

pub fn photo_key(enterprise: &EnterpriseId, agent: &UserId, enrolled_at: i64, n: usize) -> String {
    format!(
        "{PHOTO_PREFIX}{}/{}/{enrolled_at}-{n}.jpg.enc",
        enterprise.as_str(),
        agent.as_str()
    )
}

/// Templates → one encrypted text (base64 of the concatenated little-endian floats).
pub fn seal_templates(key: &DataKey, templates: &[Embedding]) -> String {
    use base64::Engine;
    let bytes: Vec<u8> = templates.iter().flat_map(Embedding::to_bytes).collect();
    key.encrypt(&base64::engine::general_purpose::STANDARD.encode(bytes))
}

/// The templates back; `None` when the stored value cannot be decrypted or parsed.
pub fn open_templates(key: &DataKey, sealed: &str) -> Option<Vec<Embedding>> {
    use base64::Engine;
    let text = key.decrypt(sealed).ok()?;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(text)
        .ok()?;
    let size = kefu_vision::embedding::EMBEDDING_LEN * 4;
    if bytes.is_empty() || bytes.len() % size != 0 {
        return None;
    }
    bytes.chunks(size).map(Embedding::from_bytes).collect()
}

fn from_row(row: &sqlx::any::AnyRow) -> Result<StoredReference, StoreError> {
    let keys: String = row.try_get("photo_keys")?;
    Ok(StoredReference {
        agent_id: UserId(row.try_get("agent_id")?),
        enterprise_id: EnterpriseId(row.try_get("enterprise_id")?),
        templates_enc: row.try_get("templates_enc")?,
        photo_count: u32::try_from(row.try_get::<i64, _>("photo_count")?).unwrap_or(0),
        photo_keys: serde_json::from_str(&keys)
            .map_err(|e| StoreError::Corrupt(format!("photo keys: {e}")))?,
        enrolled_at: row.try_get("enrolled_at")?,
        enrolled_by: UserId(row.try_get("enrolled_by")?),
    })
}

impl Store {
    pub async fn face_reference(
        &self,
        agent: &UserId,
    ) -> Result<Option<StoredReference>, StoreError> {
        let row = sqlx::query(
            "SELECT agent_id, enterprise_id, templates_enc, photo_count, photo_keys, enrolled_at, \
             enrolled_by FROM face_references WHERE agent_id = $1",
        )
        .bind(agent.as_str())
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(from_row).transpose()
    }

    /// Enrols or replaces, only while the agent is not removed (a removal may land
    /// while the photos were being read). `Ok(None)`: the agent is gone, nothing
    /// written; `Ok(Some(previous))`: written, and the reference it replaced.
    pub async fn put_face_reference(
        &self,
        r: &StoredReference,
    ) -> Result<Option<Option<StoredReference>>, StoreError> {
        let previous = self.face_reference(&r.agent_id).await?;
        let keys = serde_json::to_string(&r.photo_keys)
            .map_err(|e| StoreError::Corrupt(format!("photo keys: {e}")))?;
        let done = sqlx::query(
            "INSERT INTO face_references (agent_id, enterprise_id, templates_enc, photo_count, \
             photo_keys, enrolled_at, enrolled_by) SELECT $1, $2, $3, $4, $5, $6, $7 \
             WHERE EXISTS (SELECT 1 FROM users WHERE id = $1 AND deleted_at IS NULL) \
             ON CONFLICT (agent_id) DO UPDATE SET templates_enc = excluded.templates_enc, \
             photo_count = excluded.photo_count, photo_keys = excluded.photo_keys, \
             enrolled_at = excluded.enrolled_at, enrolled_by = excluded.enrolled_by",
        )
        .bind(r.agent_id.as_str())
        .bind(r.enterprise_id.as_str())
        .bind(&r.templates_enc)
        .bind(i64::from(r.photo_count))
        .bind(keys)
        .bind(r.enrolled_at)
        .bind(r.enrolled_by.as_str())
        .execute(&self.pool)
        .await?;
        Ok((done.rows_affected() == 1).then_some(previous))
    }

    pub async fn keeps_enrollment_photos(
        &self,
        enterprise: &EnterpriseId,
    ) -> Result<bool, StoreError> {
        let row = sqlx::query("SELECT keep_enrollment_photos FROM enterprises WHERE id = $1")
            .bind(enterprise.as_str())
            .fetch_optional(&self.pool)
            .await?;
        Ok(match row {
            Some(r) => r.try_get::<i64, _>("keep_enrollment_photos")? != 0,
            None => false,
        })
    }

    pub async fn set_keep_enrollment_photos(
        &self,
        enterprise: &EnterpriseId,
        keep: bool,
    ) -> Result<(), StoreError> {
        sqlx::query("UPDATE enterprises SET keep_enrollment_photos = $1 WHERE id = $2")
            .bind(i64::from(keep))
            .bind(enterprise.as_str())
            .execute(&self.pool)
            .await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn template(seed: f32) -> Embedding {
        Embedding::new((0..128).map(|i| (i as f32 * seed).sin()).collect()).expect("valid")
    }

    #[test]
    fn templates_are_sealed_and_open_again_only_with_the_key() {
        let key = DataKey::from_bytes(&[3u8; 32]);
        let ts = vec![template(0.3), template(0.7)];
        let sealed = seal_templates(&key, &ts);
        assert_eq!(open_templates(&key, &sealed), Some(ts.clone()));
        assert_eq!(
            open_templates(&DataKey::from_bytes(&[4u8; 32]), &sealed),
            None
        );
        // The raw floats do not appear in the sealed text.
        use base64::Engine;
        let raw = base64::engine::general_purpose::STANDARD.encode(ts[0].to_bytes());
        assert!(!sealed.contains(&raw[..16]));
    }
}
