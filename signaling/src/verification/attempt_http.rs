//! Verification attempts over HTTPS: the workbench (or the agent's phone through a
//! single-use link) opens an attempt, then sends camera frames as JPEG bodies about
//! three times a second; each answer says what to do now, and the last one the result.
//! Why frames travel this way rather than over WebRTC: docs/verification.md.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use kefu_vision::{Progress, Turn};
use serde::Serialize;

use std::time::Duration;

use super::attempts::{
    ATTEMPT_TTL_MS, Attempt, ClaimError, FRAME_INTERVAL_MS, FrameError, PHONE_LINK_TTL_MS,
    PhoneLinkError, StartError,
};
use super::worker::WorkerError;
use crate::accounts::UserRole;
use crate::cluster::forward::HeldKey;
use crate::http::auth::Authenticated;
use crate::http::error::ApiError;
use crate::state::AppState;

/// A frame body at most (a 640×480 JPEG is ~30–60 KB).
pub const MAX_FRAME_BYTES: usize = 1024 * 1024;
/// The header a phone sends its frames with.
pub use crate::cluster::forward::DEVICE_HEADER;

/// What to do now, or the result.
#[derive(Debug, Clone, Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct ProgressView {
    /// `look_at_camera`, `step`, `passed` or `failed`.
    pub state: String,
    /// For `step`: `turn_left` or `turn_right` (the person's own left/right).
    pub turn: Option<String>,
    pub step_index: Option<usize>,
    pub step_total: Option<usize>,
    /// For `failed`: `no_face`, `different_person`, `liveness_not_shown`, `timed_out`.
    pub reason: Option<String>,
    /// For `failed`: the engine's finer reason.
    pub detail: Option<String>,
}

impl ProgressView {
    pub fn of(p: Progress) -> Self {
        let base = |state: &str| ProgressView {
            state: state.into(),
            turn: None,
            step_index: None,
            step_total: None,
            reason: None,
            detail: None,
        };
        match p {
            Progress::LookAtCamera => base("look_at_camera"),
            Progress::Step {
                index, total, turn, ..
            } => ProgressView {
                turn: Some(turn_name(turn).into()),
                step_index: Some(index),
                step_total: Some(total),
                ..base("step")
            },
            Progress::Passed => base("passed"),
            Progress::Failed(f) => ProgressView {
                reason: Some(f.category().as_str().into()),
                detail: Some(f.as_str().into()),
                ..base("failed")
            },
        }
    }
}

fn turn_name(t: Turn) -> &'static str {
    t.as_str()
}

/// An open attempt.
#[derive(Debug, Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct AttemptView {
    pub id: String,
    /// Send a frame this often.
    pub frame_interval_ms: u32,
    pub max_frame_bytes: usize,
    /// Unix ms after which the attempt is over.
    pub expires_at: i64,
    pub progress: ProgressView,
}

fn attempt_view(a: &Attempt, p: Progress) -> AttemptView {
    AttemptView {
        id: a.id.clone(),
        frame_interval_ms: FRAME_INTERVAL_MS,
        max_frame_bytes: MAX_FRAME_BYTES,
        expires_at: a.expires_at(),
        progress: ProgressView::of(p),
    }
}

fn rule(status: StatusCode, code: &'static str, message: String) -> ApiError {
    ApiError::Rule {
        status,
        code,
        message,
        detail: None,
    }
}

impl From<WorkerError> for ApiError {
    fn from(e: WorkerError) -> Self {
        match e {
            WorkerError::Unavailable(_) => rule(
                StatusCode::SERVICE_UNAVAILABLE,
                "face_engine_unavailable",
                e.to_string(),
            ),
            WorkerError::Busy => rule(
                StatusCode::SERVICE_UNAVAILABLE,
                "face_engine_busy",
                e.to_string(),
            ),
            WorkerError::Failed(_) => ApiError::Internal(anyhow::anyhow!("{e}")),
        }
    }
}

impl From<StartError> for ApiError {
    fn from(e: StartError) -> Self {
        match e {
            StartError::NotEnrolled => {
                rule(StatusCode::CONFLICT, "no_face_reference", e.to_string())
            }
            StartError::ReferenceUnreadable => ApiError::Internal(anyhow::anyhow!("{e}")),
            StartError::Locked => rule(StatusCode::LOCKED, "verification_locked", e.to_string()),
            StartError::BackOff { retry_after_ms } => ApiError::Rule {
                status: StatusCode::TOO_MANY_REQUESTS,
                code: "verification_backoff",
                message: e.to_string(),
                detail: Some(serde_json::json!({ "retry_after_ms": retry_after_ms })),
            },
            StartError::Engine(w) => w.into(),
            StartError::Store(s) => s.into(),
        }
    }
}

impl From<FrameError> for ApiError {
    fn from(e: FrameError) -> Self {
        match e {
            FrameError::NotAnImage => rule(
                StatusCode::UNPROCESSABLE_ENTITY,
                "frame_not_an_image",
                e.to_string(),
            ),
            FrameError::TooLarge => ApiError::PayloadTooLarge,
            FrameError::InFlight => rule(
                StatusCode::TOO_MANY_REQUESTS,
                "frame_in_flight",
                e.to_string(),
            ),
            FrameError::Engine(w) => w.into(),
            FrameError::Store(s) => s.into(),
        }
    }
}

/// How long other nodes send an attempt's requests here: past the longest an attempt
/// lives (a phone link's wait, then a challenge on the phone).
const HELD_FOR: Duration = Duration::from_millis((PHONE_LINK_TTL_MS + 2 * ATTEMPT_TTL_MS) as u64);

/// Tells the other nodes that `key` is held here. Should Redis not take it, the
/// attempt goes on, answered wherever the load balancer sends its requests here (a
/// refusal now would waste the link or the attempt the call already changed).
async fn hold(state: &AppState, key: HeldKey) {
    if let Err(e) = state.forwarder.hold(&key, HELD_FOR).await {
        tracing::warn!("attempt not announced to the other nodes: {e}");
    }
}

#[utoipa::path(post, path = "/api/v1/me/verification/attempts", tag = "verification", security(("bearer" = [])), responses((status = 201, body = AttemptView), (status = 401, description = "no valid session", body = crate::http::error::ApiErrorDoc), (status = 403, description = "forbidden by role or rule", body = crate::http::error::ApiErrorDoc), (status = 409, description = "no face reference enrolled", body = crate::http::error::ApiErrorDoc), (status = 423, description = "locked after repeated failures", body = crate::http::error::ApiErrorDoc), (status = 429, description = "back-off after a failure", body = crate::http::error::ApiErrorDoc), (status = 503, description = "face engine unavailable or busy", body = crate::http::error::ApiErrorDoc)))]
pub async fn start(
    State(state): State<AppState>,
    auth: Authenticated,
) -> Result<(StatusCode, Json<AttemptView>), ApiError> {
    auth.require(UserRole::Agent)?;
    let attempt = state
        .attempts
        .start(&auth.user, crate::clock::now_ms())
        .await?;
    hold(&state, HeldKey::Attempt(attempt.id.clone())).await;
    Ok((
        StatusCode::CREATED,
        Json(attempt_view(&attempt, Progress::LookAtCamera)),
    ))
}

#[utoipa::path(get, path = "/api/v1/me/verification/attempts/{id}", tag = "verification", security(("bearer" = [])), params(("id" = String, Path)), responses((status = 200, body = AttemptView), (status = 401, description = "no valid session", body = crate::http::error::ApiErrorDoc), (status = 403, description = "forbidden by role or rule", body = crate::http::error::ApiErrorDoc), (status = 404, description = "not found, or not this agent's", body = crate::http::error::ApiErrorDoc)))]
pub async fn status(
    State(state): State<AppState>,
    auth: Authenticated,
    Path(id): Path<String>,
) -> Result<Json<AttemptView>, ApiError> {
    auth.require(UserRole::Agent)?;
    let attempt = state
        .attempts
        .get(&auth.user.id, &id)
        .ok_or(ApiError::NotFound)?;
    let p = state
        .attempts
        .status(&attempt, crate::clock::now_ms())
        .await?;
    Ok(Json(attempt_view(&attempt, p)))
}

#[utoipa::path(post, path = "/api/v1/me/verification/attempts/{id}/frames", tag = "verification", security(("bearer" = [])), params(("id" = String, Path)), request_body(content = Vec<u8>, content_type = "image/jpeg", description = "one camera frame"), responses((status = 200, body = ProgressView), (status = 401, description = "no valid session", body = crate::http::error::ApiErrorDoc), (status = 403, description = "forbidden by role or rule", body = crate::http::error::ApiErrorDoc), (status = 404, description = "not found, or not this agent's", body = crate::http::error::ApiErrorDoc), (status = 413, description = "frame too large", body = crate::http::error::ApiErrorDoc), (status = 422, description = "not an image", body = crate::http::error::ApiErrorDoc), (status = 503, description = "face engine unavailable or busy", body = crate::http::error::ApiErrorDoc)))]
pub async fn frame(
    State(state): State<AppState>,
    auth: Authenticated,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Json<ProgressView>, ApiError> {
    let now = crate::clock::now_ms();
    auth.require(UserRole::Agent)?;
    let attempt = state
        .attempts
        .get(&auth.user.id, &id)
        .ok_or(ApiError::NotFound)?;
    let p = state.attempts.submit(&attempt, body.to_vec(), now).await?;
    Ok(Json(ProgressView::of(p)))
}

/// A link for the agent's phone.
#[derive(Debug, Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct PhoneLinkView {
    pub url: String,
    pub expires_at: i64,
    /// The link as a QR code (SVG).
    pub qr_svg: String,
}

#[utoipa::path(post, path = "/api/v1/me/verification/attempts/{id}/phone-link", tag = "verification", security(("bearer" = [])), params(("id" = String, Path)), responses((status = 200, body = PhoneLinkView), (status = 401, description = "no valid session", body = crate::http::error::ApiErrorDoc), (status = 403, description = "forbidden by role or rule", body = crate::http::error::ApiErrorDoc), (status = 404, description = "not found, or not this agent's", body = crate::http::error::ApiErrorDoc), (status = 409, description = "the attempt has a link already (phone_link_issued) or has ended (attempt_finished)", body = crate::http::error::ApiErrorDoc)))]
pub async fn phone_link(
    State(state): State<AppState>,
    auth: Authenticated,
    Path(id): Path<String>,
) -> Result<Json<PhoneLinkView>, ApiError> {
    auth.require(UserRole::Agent)?;
    let attempt = state
        .attempts
        .get(&auth.user.id, &id)
        .ok_or(ApiError::NotFound)?;
    let (token, expires_at) = state
        .attempts
        .phone_link(&attempt, crate::clock::now_ms())
        .await
        .map_err(|e| match e {
            PhoneLinkError::Issued => {
                rule(StatusCode::CONFLICT, "phone_link_issued", e.to_string())
            }
            PhoneLinkError::Finished => {
                rule(StatusCode::CONFLICT, "attempt_finished", e.to_string())
            }
        })?;
    hold(&state, HeldKey::Link(token.clone())).await;
    let url = format!("{}/verify/{token}", state.public_url.trim_end_matches('/'));
    let code = qrcode::QrCode::new(url.as_bytes()).map_err(|e| ApiError::Internal(e.into()))?;
    let qr_svg = code
        .render::<qrcode::render::svg::Color<'_>>()
        .min_dimensions(200, 200)
        .build();
    Ok(Json(PhoneLinkView {
        url,
        expires_at,
        qr_svg,
    }))
}

/// A phone link opened: what the phone page needs.
#[derive(Debug, Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct PhoneSessionView {
    pub attempt_id: String,
    /// Send frames with this in the `x-kefu-device` header.
    pub device_token: String,
    pub frame_interval_ms: u32,
    pub max_frame_bytes: usize,
    pub expires_at: i64,
    pub agent_name: String,
    pub progress: ProgressView,
}

#[utoipa::path(post, path = "/api/v1/phone-verification/{token}", tag = "verification", params(("token" = String, Path, description = "the token of the QR link")), responses((status = 200, body = PhoneSessionView), (status = 401, description = "an Authorization header that is not a valid session", body = crate::http::error::ApiErrorDoc), (status = 404, description = "unknown link, or a signed-in user who is not the link's agent", body = crate::http::error::ApiErrorDoc), (status = 410, description = "the link was used already or has expired", body = crate::http::error::ApiErrorDoc)))]
pub async fn phone_claim(
    State(state): State<AppState>,
    auth: Option<Authenticated>,
    Path(token): Path<String>,
) -> Result<Json<PhoneSessionView>, ApiError> {
    let now = crate::clock::now_ms();
    if token.len() > 128 {
        return Err(ApiError::NotFound);
    }
    // A phone signed in as someone else (another agent, another enterprise) is told
    // nothing about the link and does not use it up.
    if let Some(auth) = &auth {
        let owner = state.attempts.link_owner(&token);
        if owner.as_ref() != Some(&auth.user.id) {
            return Err(ApiError::NotFound);
        }
    }
    let (attempt, device_token) =
        state
            .attempts
            .claim_phone_link(&token, now)
            .await
            .map_err(|e| match e {
                ClaimError::Unknown => ApiError::NotFound,
                ClaimError::Used => rule(StatusCode::GONE, "link_used", e.to_string()),
                ClaimError::Expired => rule(StatusCode::GONE, "link_expired", e.to_string()),
            })?;
    hold(&state, HeldKey::Device(device_token.clone())).await;
    let agent = state
        .store
        .user(&attempt.agent_id)
        .await?
        .ok_or(ApiError::NotFound)?;
    Ok(Json(PhoneSessionView {
        attempt_id: attempt.id.clone(),
        device_token,
        frame_interval_ms: FRAME_INTERVAL_MS,
        max_frame_bytes: MAX_FRAME_BYTES,
        expires_at: attempt.expires_at(),
        agent_name: agent.real_name,
        progress: ProgressView::of(Progress::LookAtCamera),
    }))
}

#[utoipa::path(post, path = "/api/v1/phone-verification/frames", tag = "verification", params(("x-kefu-device" = String, Header, description = "the device token from opening the link")), request_body(content = Vec<u8>, content_type = "image/jpeg", description = "one camera frame"), responses((status = 200, body = ProgressView), (status = 401, description = "no or unknown device token", body = crate::http::error::ApiErrorDoc), (status = 413, description = "frame too large", body = crate::http::error::ApiErrorDoc), (status = 422, description = "not an image", body = crate::http::error::ApiErrorDoc), (status = 503, description = "face engine unavailable or busy", body = crate::http::error::ApiErrorDoc)))]
pub async fn phone_frame(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<ProgressView>, ApiError> {
    let now = crate::clock::now_ms();
    let device = headers
        .get(DEVICE_HEADER)
        .and_then(|v| v.to_str().ok())
        .filter(|t| !t.is_empty() && t.len() <= 128)
        .ok_or(ApiError::Unauthorized)?;
    let attempt = state
        .attempts
        .by_device(device)
        .ok_or(ApiError::Unauthorized)?;
    let p = state.attempts.submit(&attempt, body.to_vec(), now).await?;
    Ok(Json(ProgressView::of(p)))
}
