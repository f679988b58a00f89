//! The agent's beauty settings: what the dialog opens on (the last confirmed
//! settings, or preset "natural"), confirm, and reset. Cancel is the page's business:
//! nothing is sent.

use axum::Json;
use axum::extract::State;
use kefu_beauty::{BeautyParams, ParamError, Preset};
use serde::{Deserialize, Serialize};

use super::auth::Authenticated;
use super::error::ApiError;
use super::json::ApiJson;
use crate::accounts::UserRole;
use crate::clock::now_ms;
use crate::state::AppState;

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ParamsView {
    pub smoothing: f64,
    pub whitening: f64,
    pub ruddiness: f64,
    pub sharpness: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct BeautyView {
    pub preset: String,
    pub params: ParamsView,
    /// Every preset and its parameters, so the dialog shows what a preset means.
    pub presets: Vec<PresetView>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct PresetView {
    pub name: String,
    pub params: ParamsView,
}

fn params_view(p: BeautyParams) -> ParamsView {
    ParamsView {
        smoothing: p.smoothing,
        whitening: p.whitening,
        ruddiness: p.ruddiness,
        sharpness: p.sharpness,
    }
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BeautyUpdate {
    pub preset: String,
    /// Adjusted parameters; omitted: the preset's own.
    #[serde(default)]
    pub params: Option<ParamsView>,
}

fn view(preset: Preset, p: BeautyParams) -> BeautyView {
    BeautyView {
        preset: preset.as_str().to_owned(),
        params: params_view(p),
        presets: Preset::ALL
            .iter()
            .map(|p| PresetView {
                name: p.as_str().to_owned(),
                params: params_view(p.params()),
            })
            .collect(),
    }
}

fn field_error(e: ParamError) -> ApiError {
    match e {
        ParamError::UnknownPreset(_) => ApiError::field("preset", e.to_string()),
        ParamError::OutOfRange { name, .. } => ApiError::field(name, e.to_string()),
    }
}

#[utoipa::path(get, path = "/api/v1/me/beauty", tag = "beauty", security(("bearer" = [])), responses((status = 200, body = BeautyView), (status = 401, description = "no valid session", body = crate::api::error::ApiErrorDoc), (status = 403, description = "forbidden by role or rule", body = crate::api::error::ApiErrorDoc)))]
pub async fn get(
    State(state): State<AppState>,
    auth: Authenticated,
) -> Result<Json<BeautyView>, ApiError> {
    auth.require(UserRole::Agent)?;
    let (preset, params) = state
        .store
        .beauty_settings(&auth.user.id)
        .await?
        .unwrap_or((Preset::default(), Preset::default().params()));
    Ok(Json(view(preset, params)))
}

#[utoipa::path(put, path = "/api/v1/me/beauty", tag = "beauty", security(("bearer" = [])), request_body = BeautyUpdate, responses((status = 200, body = BeautyView), (status = 401, description = "no valid session", body = crate::api::error::ApiErrorDoc), (status = 403, description = "forbidden by role or rule", body = crate::api::error::ApiErrorDoc), (status = 422, description = "invalid input", body = crate::api::error::ApiErrorDoc)))]
pub async fn put(
    State(state): State<AppState>,
    auth: Authenticated,
    ApiJson(req): ApiJson<BeautyUpdate>,
) -> Result<Json<BeautyView>, ApiError> {
    auth.require(UserRole::Agent)?;
    let preset: Preset = req.preset.parse().map_err(field_error)?;
    let params = match req.params {
        Some(p) => BeautyParams {
            smoothing: p.smoothing,
            whitening: p.whitening,
            ruddiness: p.ruddiness,
            sharpness: p.sharpness,
        },
        None => preset.params(),
    };
    params.validate().map_err(field_error)?;
    state
        .store
        .save_beauty_settings(&auth.user.id, preset, &params, now_ms())
        .await?;
    crate::call_media::apply_beauty(&state, &auth.user.id, params).await;
    Ok(Json(view(preset, params)))
}

/// Back to preset "natural", kept as the confirmed settings.
#[utoipa::path(post, path = "/api/v1/me/beauty/reset", tag = "beauty", security(("bearer" = [])), responses((status = 200, body = BeautyView), (status = 401, description = "no valid session", body = crate::api::error::ApiErrorDoc), (status = 403, description = "forbidden by role or rule", body = crate::api::error::ApiErrorDoc)))]
pub async fn reset(
    State(state): State<AppState>,
    auth: Authenticated,
) -> Result<Json<BeautyView>, ApiError> {
    auth.require(UserRole::Agent)?;
    let preset = Preset::default();
    state
        .store
        .save_beauty_settings(&auth.user.id, preset, &preset.params(), now_ms())
        .await?;
    crate::call_media::apply_beauty(&state, &auth.user.id, preset.params()).await;
    Ok(Json(view(preset, preset.params())))
}
