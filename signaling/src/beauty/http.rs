//! The agent's beauty settings: what the dialog opens on (the last confirmed
//! settings, or preset "natural"), confirm, and reset. Cancel is the page's business:
//! nothing is sent.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use kefu_beauty::{BeautyParams, ParamError, Preset};
use kefu_media_server::RoomId;
use serde::{Deserialize, Serialize};

use crate::accounts::UserRole;
use crate::beauty::preview::Tried;
use crate::clock::now_ms;
use crate::http::auth::Authenticated;
use crate::http::error::ApiError;
use crate::http::json::ApiJson;
use crate::rooms::media_participant_id;
use crate::rooms::token::Side;
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

#[utoipa::path(get, path = "/api/v1/me/beauty", tag = "beauty", security(("bearer" = [])), responses((status = 200, body = BeautyView), (status = 401, description = "no valid session", body = crate::http::error::ApiErrorDoc), (status = 403, description = "forbidden by role or rule", body = crate::http::error::ApiErrorDoc)))]
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

#[utoipa::path(put, path = "/api/v1/me/beauty", tag = "beauty", security(("bearer" = [])), request_body = BeautyUpdate, responses((status = 200, body = BeautyView), (status = 401, description = "no valid session", body = crate::http::error::ApiErrorDoc), (status = 403, description = "forbidden by role or rule", body = crate::http::error::ApiErrorDoc), (status = 422, description = "invalid input", body = crate::http::error::ApiErrorDoc)))]
pub async fn put(
    State(state): State<AppState>,
    auth: Authenticated,
    ApiJson(req): ApiJson<BeautyUpdate>,
) -> Result<Json<BeautyView>, ApiError> {
    auth.require(UserRole::Agent)?;
    let (preset, params) = requested_params(&req)?;
    state
        .store
        .save_beauty_settings(&auth.user.id, preset, &params, now_ms())
        .await?;
    state.calls.apply_beauty(&auth.user.id, params).await;
    Ok(Json(view(preset, params)))
}

/// Back to preset "natural", kept as the confirmed settings.
#[utoipa::path(post, path = "/api/v1/me/beauty/reset", tag = "beauty", security(("bearer" = [])), responses((status = 200, body = BeautyView), (status = 401, description = "no valid session", body = crate::http::error::ApiErrorDoc), (status = 403, description = "forbidden by role or rule", body = crate::http::error::ApiErrorDoc)))]
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
    state
        .calls
        .apply_beauty(&auth.user.id, preset.params())
        .await;
    Ok(Json(view(preset, preset.params())))
}

/// A preview to open: the settings the dialog starts from.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct PreviewOpened {
    /// The agent's own preview room.
    pub room: String,
    /// Joins the room through the signaling WebSocket (docs/signaling.md).
    pub room_token: String,
}

/// Settings from a request: the preset's own, or the adjusted ones; validated.
fn requested_params(req: &BeautyUpdate) -> Result<(Preset, BeautyParams), ApiError> {
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
    Ok((preset, params))
}

/// Opens the dialog's preview: the agent's camera, sent into the returned room, comes
/// back through the beauty pipeline with the settings being tried. Replaces the
/// agent's previous preview. Nothing is saved.
#[utoipa::path(post, path = "/api/v1/me/beauty/preview", tag = "beauty", security(("bearer" = [])), request_body = BeautyUpdate, responses((status = 201, body = PreviewOpened), (status = 401, description = "no valid session", body = crate::http::error::ApiErrorDoc), (status = 403, description = "forbidden by role or rule", body = crate::http::error::ApiErrorDoc), (status = 422, description = "invalid input", body = crate::http::error::ApiErrorDoc)))]
pub async fn open_preview(
    State(state): State<AppState>,
    auth: Authenticated,
    ApiJson(req): ApiJson<BeautyUpdate>,
) -> Result<(StatusCode, Json<PreviewOpened>), ApiError> {
    auth.require(UserRole::Agent)?;
    let (_, params) = requested_params(&req)?;
    let agent = auth.user.id.as_str();
    let (room, replaced) = state.previews.open(agent, params).await?;
    if let Some(old) = replaced {
        end_preview(&state, &old).await;
    }
    state.rooms.open(&room).await?;
    let room_token = state
        .tokens
        .issue(&room, agent, Side::Agent, crate::rooms::token::unix_now());
    Ok((
        StatusCode::CREATED,
        Json(PreviewOpened { room, room_token }),
    ))
}

/// Settings to try in the open preview, from the next frame on. Not saved.
#[utoipa::path(put, path = "/api/v1/me/beauty/preview", tag = "beauty", security(("bearer" = [])), request_body = BeautyUpdate, responses((status = 204, description = "applied to the preview"), (status = 401, description = "no valid session", body = crate::http::error::ApiErrorDoc), (status = 403, description = "forbidden by role or rule", body = crate::http::error::ApiErrorDoc), (status = 404, description = "no preview open", body = crate::http::error::ApiErrorDoc), (status = 422, description = "invalid input", body = crate::http::error::ApiErrorDoc)))]
pub async fn try_preview(
    State(state): State<AppState>,
    auth: Authenticated,
    ApiJson(req): ApiJson<BeautyUpdate>,
) -> Result<StatusCode, ApiError> {
    auth.require(UserRole::Agent)?;
    let (_, params) = requested_params(&req)?;
    let agent = auth.user.id.as_str();
    match state.previews.set_params(agent, params).await? {
        Tried::NoPreview => Err(ApiError::NotFound),
        Tried::Pending => Ok(StatusCode::NO_CONTENT),
        Tried::Live { room } => {
            let media_id = media_participant_id(&room, agent, Side::Agent);
            state
                .media
                .preview_beauty(RoomId::new(&room), media_id, params);
            Ok(StatusCode::NO_CONTENT)
        }
    }
}

/// Closes the preview (the dialog closed); closing the page does it too.
#[utoipa::path(delete, path = "/api/v1/me/beauty/preview", tag = "beauty", security(("bearer" = [])), responses((status = 204, description = "closed, or none was open"), (status = 401, description = "no valid session", body = crate::http::error::ApiErrorDoc), (status = 403, description = "forbidden by role or rule", body = crate::http::error::ApiErrorDoc)))]
pub async fn close_preview(
    State(state): State<AppState>,
    auth: Authenticated,
) -> Result<StatusCode, ApiError> {
    auth.require(UserRole::Agent)?;
    if let Some(room) = state.previews.close(auth.user.id.as_str()).await? {
        end_preview(&state, &room).await;
    }
    Ok(StatusCode::NO_CONTENT)
}

/// Stops a preview room's pipeline and drops the room if its page never joined (a
/// joined page leaving closes it through the WebSocket).
async fn end_preview(state: &AppState, room: &str) {
    state.media.stop_beauty(RoomId::new(room));
    if let Err(e) = state.rooms.close_if_empty(room).await {
        tracing::warn!(%room, "preview room not closed: {e}");
    }
}
