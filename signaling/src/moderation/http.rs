//! The admin API of content moderation: the enterprise's screening settings, the
//! incidents, their evidence (a mosaic to look at first; the clear picture only on an
//! explicit, audited reveal) and their review. Agents get none of it.

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::header;
use axum::response::IntoResponse;
use kefu_media_server::moderation::ModerationSettings;
use serde::{Deserialize, Serialize};

use super::store::{Incident, IncidentFilter};
use crate::accounts::{UserId, UserRole};
use crate::http::auth::Authenticated;
use crate::http::error::ApiError;
use crate::http::json::ApiJson;
use crate::state::AppState;

/// Longest review note.
const MAX_NOTE_CHARS: usize = 500;

/// The enterprise's screening settings (see docs/moderation.md for their meaning).
/// The API's own type, not the media plane's `ModerationSettings`: it carries the
/// OpenAPI schema (the media server has no utoipa) and keeps the API's shape when
/// the policy's internals change.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ModerationSettingsView {
    pub enabled: bool,
    /// 0.5–0.99: a sample scoring at least this is positive.
    pub threshold: f32,
    /// 1–10 consecutive positives before the picture is withheld.
    pub positives_to_blur: u32,
    /// 1–20 further consecutive positives before the call ends.
    pub positives_to_end: u32,
    /// 500–10000 ms between samples for `warmup_ms` after video starts.
    pub warmup_interval_ms: u32,
    /// 0–120000 ms.
    pub warmup_ms: u32,
    /// warmup_interval_ms–60000 ms between samples after the warm-up.
    pub steady_interval_ms: u32,
}

impl From<ModerationSettings> for ModerationSettingsView {
    fn from(s: ModerationSettings) -> Self {
        Self {
            enabled: s.enabled,
            threshold: s.threshold,
            positives_to_blur: s.positives_to_blur,
            positives_to_end: s.positives_to_end,
            warmup_interval_ms: s.warmup_interval_ms,
            warmup_ms: s.warmup_ms,
            steady_interval_ms: s.steady_interval_ms,
        }
    }
}

impl From<ModerationSettingsView> for ModerationSettings {
    fn from(v: ModerationSettingsView) -> Self {
        Self {
            enabled: v.enabled,
            threshold: v.threshold,
            positives_to_blur: v.positives_to_blur,
            positives_to_end: v.positives_to_end,
            warmup_interval_ms: v.warmup_interval_ms,
            warmup_ms: v.warmup_ms,
            steady_interval_ms: v.steady_interval_ms,
        }
    }
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct IncidentQuery {
    /// Inclusive, Unix milliseconds.
    pub from: Option<i64>,
    /// Exclusive, Unix milliseconds.
    pub to: Option<i64>,
    /// An agent's id.
    pub agent: Option<String>,
    /// `pending`, `confirmed` or `dismissed`.
    pub result: Option<String>,
}

/// One incident, as an admin sees it (no evidence bytes: those have their own routes).
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct IncidentView {
    pub id: String,
    pub created_at: i64,
    pub call_id: String,
    pub agent_id: Option<String>,
    pub agent_name: Option<String>,
    /// `agent` or `customer`: whose video.
    pub party: String,
    /// `blurred` or `ended`.
    pub action: String,
    pub scores: Vec<f32>,
    /// `pending`, `confirmed` or `dismissed`.
    pub review: String,
    pub review_note: Option<String>,
    pub reviewed_at: Option<i64>,
    /// Whether an evidence picture was kept.
    pub evidence: bool,
}

impl From<Incident> for IncidentView {
    fn from(i: Incident) -> Self {
        Self {
            evidence: i.evidence_key.is_some(),
            id: i.id,
            created_at: i.created_at,
            call_id: i.call_id,
            agent_id: i.agent_id.map(|a| a.0),
            agent_name: i.agent_name,
            party: i.party,
            action: i.action,
            scores: i.scores,
            review: i.review,
            review_note: i.review_note,
            reviewed_at: i.reviewed_at,
        }
    }
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReviewRequest {
    /// `confirmed` or `dismissed`.
    pub decision: String,
    #[serde(default)]
    pub note: Option<String>,
}

#[utoipa::path(get, path = "/api/v1/enterprise/moderation-settings", tag = "moderation", security(("bearer" = [])), responses((status = 200, body = ModerationSettingsView), (status = 401, description = "no valid session", body = crate::http::error::ApiErrorDoc), (status = 403, description = "forbidden by role or rule", body = crate::http::error::ApiErrorDoc)))]
pub async fn get_settings(
    State(state): State<AppState>,
    auth: Authenticated,
) -> Result<Json<ModerationSettingsView>, ApiError> {
    auth.require(UserRole::Admin)?;
    let settings = state
        .store
        .moderation_settings(&auth.user.enterprise_id)
        .await?;
    Ok(Json(settings.into()))
}

#[utoipa::path(put, path = "/api/v1/enterprise/moderation-settings", tag = "moderation", security(("bearer" = [])), request_body = ModerationSettingsView, responses((status = 200, body = ModerationSettingsView), (status = 401, description = "no valid session", body = crate::http::error::ApiErrorDoc), (status = 403, description = "forbidden by role or rule", body = crate::http::error::ApiErrorDoc), (status = 422, description = "a setting out of its range (the field is named)", body = crate::http::error::ApiErrorDoc)))]
pub async fn put_settings(
    State(state): State<AppState>,
    auth: Authenticated,
    ApiJson(req): ApiJson<ModerationSettingsView>,
) -> Result<Json<ModerationSettingsView>, ApiError> {
    auth.require(UserRole::Admin)?;
    let settings = ModerationSettings::from(req);
    settings
        .validate()
        .map_err(|e| ApiError::field(e.field, format!("must be within {}", e.range)))?;
    let enterprise = &auth.user.enterprise_id;
    let before = state.store.moderation_settings(enterprise).await?;
    state
        .store
        .set_moderation_settings(enterprise, &settings, &auth.user.id, crate::clock::now_ms())
        .await?;
    // Turning screening off is the one change that must never pass unnoticed.
    let action = match (before.enabled, settings.enabled) {
        (true, false) => "moderation_disabled",
        (false, true) => "moderation_enabled",
        _ => "moderation_settings_changed",
    };
    crate::audit::record(&state.store, &auth, action, enterprise.as_str()).await?;
    Ok(Json(settings.into()))
}

#[utoipa::path(get, path = "/api/v1/moderation/incidents", tag = "moderation", security(("bearer" = [])), params(IncidentQuery), responses((status = 200, body = Vec<IncidentView>), (status = 401, description = "no valid session", body = crate::http::error::ApiErrorDoc), (status = 403, description = "forbidden by role or rule", body = crate::http::error::ApiErrorDoc), (status = 422, description = "invalid input", body = crate::http::error::ApiErrorDoc)))]
pub async fn list(
    State(state): State<AppState>,
    auth: Authenticated,
    Query(q): Query<IncidentQuery>,
) -> Result<Json<Vec<IncidentView>>, ApiError> {
    auth.require(UserRole::Admin)?;
    if let Some(r) = &q.result
        && !matches!(r.as_str(), "pending" | "confirmed" | "dismissed")
    {
        return Err(ApiError::field("result", "pending, confirmed or dismissed"));
    }
    let filter = IncidentFilter {
        from: q.from,
        to: q.to,
        agent: q.agent.filter(|a| !a.is_empty()).map(UserId),
        review: q.result,
    };
    let rows = state
        .store
        .incidents(&auth.user.enterprise_id, &filter)
        .await?;
    Ok(Json(rows.into_iter().map(IncidentView::from).collect()))
}

async fn incident_of(
    state: &AppState,
    auth: &Authenticated,
    id: &str,
) -> Result<Incident, ApiError> {
    auth.require(UserRole::Admin)?;
    state
        .store
        .incident(&auth.user.enterprise_id, id)
        .await?
        // Another enterprise's incident is reported exactly like an unknown one.
        .ok_or(ApiError::NotFound)
}

async fn picture(
    state: &AppState,
    key: Option<&str>,
) -> Result<impl IntoResponse + use<>, ApiError> {
    let key = key.ok_or(ApiError::NotFound)?;
    let sealed = state
        .recordings
        .storage
        .store
        .read_all(key)
        .await
        .map_err(|e| ApiError::Internal(e.into()))?;
    let jpeg = state
        .data_key
        .decrypt_bytes(&sealed)
        .map_err(|_| ApiError::Internal(anyhow::anyhow!("evidence {key} does not decrypt")))?;
    Ok((
        [
            (header::CONTENT_TYPE, "image/jpeg"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        jpeg,
    ))
}

#[utoipa::path(get, path = "/api/v1/moderation/incidents/{id}/mosaic", tag = "moderation", security(("bearer" = [])), params(("id" = String, Path)), responses((status = 200, content_type = "image/jpeg", description = "a coarse mosaic of the evidence picture"), (status = 401, description = "no valid session", body = crate::http::error::ApiErrorDoc), (status = 403, description = "forbidden by role or rule", body = crate::http::error::ApiErrorDoc), (status = 404, description = "not found, no evidence, or another enterprise's", body = crate::http::error::ApiErrorDoc)))]
pub async fn mosaic(
    State(state): State<AppState>,
    auth: Authenticated,
    Path(id): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    let incident = incident_of(&state, &auth, &id).await?;
    picture(&state, incident.mosaic_key.as_deref()).await
}

#[utoipa::path(post, path = "/api/v1/moderation/incidents/{id}/reveal", tag = "moderation", security(("bearer" = [])), params(("id" = String, Path)), responses((status = 200, content_type = "image/jpeg", description = "the evidence picture as taken (audited)"), (status = 401, description = "no valid session", body = crate::http::error::ApiErrorDoc), (status = 403, description = "forbidden by role or rule", body = crate::http::error::ApiErrorDoc), (status = 404, description = "not found, no evidence, or another enterprise's", body = crate::http::error::ApiErrorDoc)))]
pub async fn reveal(
    State(state): State<AppState>,
    auth: Authenticated,
    Path(id): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    let incident = incident_of(&state, &auth, &id).await?;
    let response = picture(&state, incident.evidence_key.as_deref()).await?;
    crate::audit::record(
        &state.store,
        &auth,
        "moderation_evidence_revealed",
        &incident.id,
    )
    .await?;
    Ok(response)
}

#[utoipa::path(post, path = "/api/v1/moderation/incidents/{id}/review", tag = "moderation", security(("bearer" = [])), params(("id" = String, Path)), request_body = ReviewRequest, responses((status = 200, body = IncidentView), (status = 401, description = "no valid session", body = crate::http::error::ApiErrorDoc), (status = 403, description = "forbidden by role or rule", body = crate::http::error::ApiErrorDoc), (status = 404, description = "not found, or another enterprise's", body = crate::http::error::ApiErrorDoc), (status = 422, description = "invalid input", body = crate::http::error::ApiErrorDoc)))]
pub async fn review(
    State(state): State<AppState>,
    auth: Authenticated,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<ReviewRequest>,
) -> Result<Json<IncidentView>, ApiError> {
    let incident = incident_of(&state, &auth, &id).await?;
    if !matches!(req.decision.as_str(), "confirmed" | "dismissed") {
        return Err(ApiError::field("decision", "confirmed or dismissed"));
    }
    let note = req.note.as_deref().map(str::trim).filter(|n| !n.is_empty());
    if note.is_some_and(|n| n.chars().count() > MAX_NOTE_CHARS) {
        return Err(ApiError::field("note", "at most 500 characters"));
    }
    state
        .store
        .review_incident(
            &auth.user.enterprise_id,
            &incident.id,
            &req.decision,
            note,
            &auth.user.id,
            crate::clock::now_ms(),
        )
        .await?;
    let action = format!("moderation_incident_{}", req.decision);
    crate::audit::record(&state.store, &auth, &action, &incident.id).await?;
    let updated = incident_of(&state, &auth, &id).await?;
    Ok(Json(updated.into()))
}
