//! Admins enrol an agent's face reference (one to three photos), see whether one is
//! enrolled, clear a verification lock, and choose whether photos are kept.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use base64::Engine;
use kefu_vision::{Embedding, EnrollError};
use serde::{Deserialize, Serialize};
use tracing::warn;

use super::references::{StoredReference, photo_key, seal_templates};
use crate::accounts::{User, UserId, UserRole};
use crate::http::auth::Authenticated;
use crate::http::error::ApiError;
use crate::http::json::ApiJson;
use crate::state::AppState;

pub const MAX_PHOTOS: usize = 3;
/// Three 10 MB photos in base64, with room for the JSON around them.
pub const MAX_ENROLL_BODY_BYTES: usize = 42 * 1024 * 1024;

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EnrollRequest {
    /// One to three photos (JPEG or PNG), base64.
    pub photos: Vec<String>,
}

/// Whether an agent has a reference, without anything of it.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct FaceReferenceView {
    pub enrolled: bool,
    pub enrolled_at: Option<i64>,
    pub photo_count: u32,
    /// Whether the photos themselves are kept (encrypted, admins only).
    pub photos_kept: bool,
    pub verification_locked: bool,
}

async fn agent_of_enterprise(
    state: &AppState,
    auth: &Authenticated,
    id: String,
) -> Result<User, ApiError> {
    auth.require(UserRole::Admin)?;
    state
        .store
        .user(&UserId(id))
        .await?
        // Another enterprise's agent is reported exactly like an unknown one.
        .filter(|u| u.enterprise_id == auth.user.enterprise_id && u.role == UserRole::Agent)
        .ok_or(ApiError::NotFound)
}

async fn view(state: &AppState, agent: &User) -> Result<FaceReferenceView, ApiError> {
    let r = state.store.face_reference(&agent.id).await?;
    let locked = state.store.verification_lock(&agent.id).await?.is_locked();
    Ok(FaceReferenceView {
        enrolled: r.is_some(),
        enrolled_at: r.as_ref().map(|r| r.enrolled_at),
        photo_count: r.as_ref().map_or(0, |r| r.photo_count),
        photos_kept: r.as_ref().is_some_and(|r| !r.photo_keys.is_empty()),
        verification_locked: locked,
    })
}

fn photo_error(index: usize, e: EnrollError) -> ApiError {
    let status = match e {
        EnrollError::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
        _ => StatusCode::UNPROCESSABLE_ENTITY,
    };
    ApiError::Rule {
        status,
        code: e.code(),
        message: format!("photo {}: {e}", index + 1),
        detail: Some(serde_json::json!({ "index": index })),
    }
}

#[utoipa::path(get, path = "/api/v1/users/{id}/face-reference", tag = "verification", security(("bearer" = [])), params(("id" = String, Path)), responses((status = 200, body = FaceReferenceView), (status = 401, description = "no valid session", body = crate::http::error::ApiErrorDoc), (status = 403, description = "forbidden by role or rule", body = crate::http::error::ApiErrorDoc), (status = 404, description = "not found, or belongs to another enterprise", body = crate::http::error::ApiErrorDoc)))]
pub async fn get(
    State(state): State<AppState>,
    auth: Authenticated,
    Path(id): Path<String>,
) -> Result<Json<FaceReferenceView>, ApiError> {
    let agent = agent_of_enterprise(&state, &auth, id).await?;
    Ok(Json(view(&state, &agent).await?))
}

#[utoipa::path(put, path = "/api/v1/users/{id}/face-reference", tag = "verification", security(("bearer" = [])), params(("id" = String, Path)), request_body = EnrollRequest, responses((status = 200, body = FaceReferenceView), (status = 401, description = "no valid session", body = crate::http::error::ApiErrorDoc), (status = 403, description = "forbidden by role or rule", body = crate::http::error::ApiErrorDoc), (status = 404, description = "not found, or belongs to another enterprise", body = crate::http::error::ApiErrorDoc), (status = 413, description = "a photo is too large (10 MB, 4096 px)", body = crate::http::error::ApiErrorDoc), (status = 422, description = "a photo is unusable: photo_not_an_image, photo_no_face, photo_several_faces, photo_face_too_small, photo_too_dark, photo_too_blurry (detail.index says which)", body = crate::http::error::ApiErrorDoc), (status = 503, description = "face engine unavailable or busy", body = crate::http::error::ApiErrorDoc)))]
pub async fn put(
    State(state): State<AppState>,
    auth: Authenticated,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<EnrollRequest>,
) -> Result<Json<FaceReferenceView>, ApiError> {
    let agent = agent_of_enterprise(&state, &auth, id).await?;
    if req.photos.is_empty() || req.photos.len() > MAX_PHOTOS {
        return Err(ApiError::field("photos", "one to three photos"));
    }
    let mut photos = Vec::with_capacity(req.photos.len());
    let mut templates: Vec<Embedding> = Vec::with_capacity(req.photos.len());
    for (i, text) in req.photos.iter().enumerate() {
        // A data: URL prefix (from a browser's FileReader) is accepted too.
        let b64 = text
            .rsplit_once(";base64,")
            .map_or(text.as_str(), |(_, b)| b);
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(b64.trim())
            .map_err(|_| photo_error(i, EnrollError::NotAnImage))?;
        let template = state
            .attempts
            .worker
            .enroll(bytes.clone())
            .await?
            .map_err(|e| photo_error(i, e))?;
        templates.push(template);
        photos.push(bytes);
    }
    let now = crate::clock::now_ms();
    let mut photo_keys = Vec::new();
    if state
        .store
        .keeps_enrollment_photos(&agent.enterprise_id)
        .await?
    {
        let objects = &state.recordings.storage.store;
        for (n, bytes) in photos.iter().enumerate() {
            let key = photo_key(&agent.enterprise_id, &agent.id, now, n);
            objects
                .put(
                    &key,
                    state.data_key.encrypt_bytes(bytes),
                    "application/octet-stream",
                )
                .await
                .map_err(|e| ApiError::Internal(e.into()))?;
            photo_keys.push(key);
        }
    }
    let previous = state
        .store
        .put_face_reference(&StoredReference {
            agent_id: agent.id.clone(),
            enterprise_id: agent.enterprise_id.clone(),
            templates_enc: seal_templates(&state.data_key, &templates),
            photo_count: u32::try_from(photos.len()).unwrap_or(0),
            photo_keys: photo_keys.clone(),
            enrolled_at: now,
            enrolled_by: auth.user.id.clone(),
        })
        .await?;
    let Some(previous) = previous else {
        // Removed while the photos were read: keep nothing of them.
        for key in &photo_keys {
            let _ = state.recordings.storage.store.delete(key).await;
        }
        return Err(ApiError::NotFound);
    };
    let action = if previous.is_some() {
        "face_reference_replaced"
    } else {
        "face_reference_enrolled"
    };
    crate::audit::record(&state.store, &auth, action, agent.id.as_str()).await?;
    // The replaced reference's photos go; nothing of it is kept.
    if let Some(old) = previous {
        for key in old.photo_keys {
            if let Err(e) = state.recordings.storage.store.delete(&key).await {
                warn!("cannot delete a replaced reference photo: {e}");
            }
        }
    }
    Ok(Json(view(&state, &agent).await?))
}

#[utoipa::path(post, path = "/api/v1/users/{id}/verification-lock/clear", tag = "verification", security(("bearer" = [])), params(("id" = String, Path)), responses((status = 200, body = FaceReferenceView), (status = 401, description = "no valid session", body = crate::http::error::ApiErrorDoc), (status = 403, description = "forbidden by role or rule", body = crate::http::error::ApiErrorDoc), (status = 404, description = "not found, or belongs to another enterprise", body = crate::http::error::ApiErrorDoc), (status = 409, description = "not locked", body = crate::http::error::ApiErrorDoc)))]
pub async fn clear_lock(
    State(state): State<AppState>,
    auth: Authenticated,
    Path(id): Path<String>,
) -> Result<Json<FaceReferenceView>, ApiError> {
    let agent = agent_of_enterprise(&state, &auth, id).await?;
    let cleared = state
        .store
        .clear_verification_lock(&agent.id, &auth.user.id, crate::clock::now_ms())
        .await?;
    if !cleared {
        return Err(ApiError::Rule {
            status: StatusCode::CONFLICT,
            code: "not_locked",
            message: "verification is not locked for this agent".into(),
            detail: None,
        });
    }
    crate::audit::record(
        &state.store,
        &auth,
        "verification_lock_cleared",
        agent.id.as_str(),
    )
    .await?;
    Ok(Json(view(&state, &agent).await?))
}

/// The enterprise's verification settings.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct VerificationSettings {
    /// Keep enrolled photos (encrypted, admins only) besides the templates.
    pub keep_enrollment_photos: bool,
}

#[utoipa::path(get, path = "/api/v1/enterprise/verification-settings", tag = "verification", security(("bearer" = [])), responses((status = 200, body = VerificationSettings), (status = 401, description = "no valid session", body = crate::http::error::ApiErrorDoc), (status = 403, description = "forbidden by role or rule", body = crate::http::error::ApiErrorDoc)))]
pub async fn get_settings(
    State(state): State<AppState>,
    auth: Authenticated,
) -> Result<Json<VerificationSettings>, ApiError> {
    auth.require(UserRole::Admin)?;
    Ok(Json(VerificationSettings {
        keep_enrollment_photos: state
            .store
            .keeps_enrollment_photos(&auth.user.enterprise_id)
            .await?,
    }))
}

#[utoipa::path(put, path = "/api/v1/enterprise/verification-settings", tag = "verification", security(("bearer" = [])), request_body = VerificationSettings, responses((status = 200, body = VerificationSettings), (status = 401, description = "no valid session", body = crate::http::error::ApiErrorDoc), (status = 403, description = "forbidden by role or rule", body = crate::http::error::ApiErrorDoc), (status = 422, description = "invalid input", body = crate::http::error::ApiErrorDoc)))]
pub async fn put_settings(
    State(state): State<AppState>,
    auth: Authenticated,
    ApiJson(req): ApiJson<VerificationSettings>,
) -> Result<Json<VerificationSettings>, ApiError> {
    auth.require(UserRole::Admin)?;
    state
        .store
        .set_keep_enrollment_photos(&auth.user.enterprise_id, req.keep_enrollment_photos)
        .await?;
    let action = if req.keep_enrollment_photos {
        "verification_settings_keep_photos_on"
    } else {
        "verification_settings_keep_photos_off"
    };
    crate::audit::record(
        &state.store,
        &auth,
        action,
        auth.user.enterprise_id.as_str(),
    )
    .await?;
    Ok(Json(req))
}
