//! Recordings: the list (admins: the whole enterprise; agents: calls they took part
//! in; customers: none), play and download links, retries, and the audit log.
//!
//! Players need a URL they can seek in, not a header: after the access check (and
//! the audit entry) the API hands out a short-lived random link to
//! `/media/recordings/{token}`, which streams from the object store honouring `Range`.

use std::collections::HashMap;
use std::time::Duration;

use axum::Json;
use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use kefu_recorder::RecordingKind;
use kefu_recorder::naming::{content_disposition, format_hms};
use serde::{Deserialize, Serialize};
use tracing::warn;

use crate::accounts::{CallId, CustomerId, UserId, UserRole};
use crate::http::auth::Authenticated;
use crate::http::error::ApiError;
use crate::recordings::{Recording, RecordingFilter, RecordingState};
use crate::state::AppState;

const MAX_ROWS: u32 = 1000;
/// How long a play or download link works.
const LINK_TTL: Duration = Duration::from_secs(600);

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct RecordingQuery {
    pub agent_id: Option<String>,
    pub customer_id: Option<String>,
    pub call_id: Option<String>,
    /// Inclusive, Unix milliseconds.
    pub from: Option<i64>,
    /// Exclusive, Unix milliseconds.
    pub to: Option<i64>,
    /// `video` or `voice`.
    pub kind: Option<String>,
    /// `recording`, `processing`, `ready` or `failed`.
    pub state: Option<String>,
}

/// One recording as listed.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct RecordingView {
    pub id: String,
    pub call_id: String,
    pub agent_id: Option<String>,
    pub agent_name: Option<String>,
    pub customer_id: Option<String>,
    pub customer_name: Option<String>,
    /// `video` or `voice`.
    pub kind: String,
    /// `recording`, `processing`, `ready` or `failed`.
    pub state: String,
    /// `recording`, `transcoding` or `upload` when failed.
    pub failure_kind: Option<String>,
    /// Why it failed (admins only).
    pub failure_reason: Option<String>,
    /// "2026-11-25 14:30:05 视频通话记录.mp4": the download's file name.
    pub name: String,
    pub started_at: i64,
    pub ended_at: Option<i64>,
    pub duration_ms: Option<i64>,
    /// `hh:mm:ss`.
    pub duration: Option<String>,
    pub size_bytes: Option<i64>,
    /// Whether an admin may retry it.
    pub retryable: bool,
    /// Admins only (false for agents): content moderation acted during this call;
    /// its incidents are under `/api/v1/moderation/incidents`.
    pub moderated: bool,
}

/// A link to the media, valid for a few minutes.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct MediaLink {
    pub url: String,
    pub expires_in_secs: u64,
}

fn filter_of(q: RecordingQuery) -> Result<RecordingFilter, ApiError> {
    let kind = match q.kind.as_deref() {
        None | Some("") => None,
        Some(k) => {
            Some(RecordingKind::parse(k).ok_or_else(|| ApiError::field("kind", "video or voice"))?)
        }
    };
    let state =
        match q.state.as_deref() {
            None | Some("") => None,
            Some(s) => Some(RecordingState::parse(s).ok_or_else(|| {
                ApiError::field("state", "recording, processing, ready or failed")
            })?),
        };
    if let (Some(from), Some(to)) = (q.from, q.to)
        && from >= to
    {
        return Err(ApiError::field("to", "must be after from"));
    }
    Ok(RecordingFilter {
        agent_id: q.agent_id.filter(|a| !a.is_empty()).map(UserId),
        customer_id: q.customer_id.filter(|c| !c.is_empty()).map(CustomerId),
        call_id: q.call_id.filter(|c| !c.is_empty()).map(CallId),
        from: q.from,
        to: q.to,
        kind,
        state,
    })
}

/// Whether `auth` may see `rec`: admins of its enterprise, or the agent of its call.
fn may_see(auth: &Authenticated, rec: &Recording) -> bool {
    rec.enterprise_id == auth.user.enterprise_id
        && match auth.user.role {
            UserRole::Admin => true,
            UserRole::Agent => rec.agent_id.as_ref() == Some(&auth.user.id),
        }
}

async fn view(
    state: &AppState,
    auth: &Authenticated,
    rec: Recording,
    names: &HashMap<UserId, String>,
) -> Result<RecordingView, ApiError> {
    let customer_name = match &rec.customer_id {
        Some(c) => state.store.customer_name(&rec.enterprise_id, c).await?,
        None => None,
    };
    let admin = auth.user.role == UserRole::Admin;
    let moderated = admin && state.store.call_was_moderated(&rec.call_id.0).await?;
    Ok(RecordingView {
        moderated,
        agent_name: rec.agent_id.as_ref().and_then(|a| names.get(a).cloned()),
        customer_name,
        id: rec.id,
        call_id: rec.call_id.0,
        agent_id: rec.agent_id.map(|a| a.0),
        customer_id: rec.customer_id.map(|c| c.0),
        kind: rec.kind.as_str().into(),
        state: rec.state.as_str().into(),
        failure_kind: rec.failure_kind.map(|k| k.as_str().into()),
        failure_reason: if admin { rec.failure_reason } else { None },
        name: rec.display_name,
        started_at: rec.started_at,
        ended_at: rec.ended_at,
        duration: rec.duration_ms.map(format_hms),
        duration_ms: rec.duration_ms,
        size_bytes: rec.size_bytes,
        retryable: admin && rec.state == RecordingState::Failed,
    })
}

async fn agent_names(
    state: &AppState,
    auth: &Authenticated,
) -> Result<HashMap<UserId, String>, ApiError> {
    // Removed agents too: their recordings still name them.
    Ok(state
        .store
        .user_names_of(&auth.user.enterprise_id)
        .await?
        .into_iter()
        .collect())
}

/// The recording `id` if `auth` may see it; anything else is 404 (never revealed).
async fn visible(state: &AppState, auth: &Authenticated, id: &str) -> Result<Recording, ApiError> {
    match state.store.recording(id).await? {
        Some(rec) if may_see(auth, &rec) => Ok(rec),
        _ => Err(ApiError::NotFound),
    }
}

#[utoipa::path(get, path = "/api/v1/recordings", params(RecordingQuery), tag = "recordings",
    responses((status = 200, body = [RecordingView]), (status = 401), (status = 422)))]
pub async fn list(
    State(state): State<AppState>,
    auth: Authenticated,
    Query(q): Query<RecordingQuery>,
) -> Result<Json<Vec<RecordingView>>, ApiError> {
    let mut filter = filter_of(q)?;
    if auth.user.role == UserRole::Agent {
        // Agents see the calls they took part in, whatever they ask for.
        filter.agent_id = Some(auth.user.id.clone());
    }
    let names = agent_names(&state, &auth).await?;
    let mut out = Vec::new();
    for rec in state
        .store
        .recordings(&auth.user.enterprise_id, &filter, MAX_ROWS)
        .await?
    {
        out.push(view(&state, &auth, rec, &names).await?);
    }
    Ok(Json(out))
}

#[utoipa::path(get, path = "/api/v1/recordings/{id}", tag = "recordings",
    responses((status = 200, body = RecordingView), (status = 401), (status = 404)))]
pub async fn get(
    State(state): State<AppState>,
    auth: Authenticated,
    Path(id): Path<String>,
) -> Result<Json<RecordingView>, ApiError> {
    let rec = visible(&state, &auth, &id).await?;
    let names = agent_names(&state, &auth).await?;
    Ok(Json(view(&state, &auth, rec, &names).await?))
}

#[utoipa::path(post, path = "/api/v1/recordings/{id}/play", tag = "recordings",
    responses((status = 200, body = MediaLink), (status = 401), (status = 404), (status = 409)))]
pub async fn play(
    State(state): State<AppState>,
    auth: Authenticated,
    Path(id): Path<String>,
) -> Result<Json<MediaLink>, ApiError> {
    link(&state, &auth, &id, Disposition::Inline).await
}

#[utoipa::path(post, path = "/api/v1/recordings/{id}/download", tag = "recordings",
    responses((status = 200, body = MediaLink), (status = 401), (status = 404), (status = 409)))]
pub async fn download(
    State(state): State<AppState>,
    auth: Authenticated,
    Path(id): Path<String>,
) -> Result<Json<MediaLink>, ApiError> {
    link(&state, &auth, &id, Disposition::Attachment).await
}

#[utoipa::path(post, path = "/api/v1/recordings/{id}/retry", tag = "recordings",
    responses((status = 202, body = RecordingView), (status = 403), (status = 404), (status = 409)))]
pub async fn retry(
    State(state): State<AppState>,
    auth: Authenticated,
    Path(id): Path<String>,
) -> Result<(StatusCode, Json<RecordingView>), ApiError> {
    auth.require(UserRole::Admin)?;
    let rec = visible(&state, &auth, &id).await?;
    let now = crate::clock::now_ms();
    state
        .recordings
        .retry(&state.store, &rec, now)
        .await
        .map_err(|e| ApiError::Conflict(e.to_string()))?;
    crate::audit::record(&state.store, &auth, "recording.retry", &rec.id).await?;
    let rec = visible(&state, &auth, &id).await?;
    let names = agent_names(&state, &auth).await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(view(&state, &auth, rec, &names).await?),
    ))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Disposition {
    Inline,
    Attachment,
}

/// A link's value in the link store: `play:<id>` or `download:<id>`.
fn link_value(disposition: Disposition, recording_id: &str) -> String {
    match disposition {
        Disposition::Inline => format!("play:{recording_id}"),
        Disposition::Attachment => format!("download:{recording_id}"),
    }
}

fn parse_link(value: &str) -> Option<(Disposition, &str)> {
    if let Some(id) = value.strip_prefix("play:") {
        Some((Disposition::Inline, id))
    } else {
        value
            .strip_prefix("download:")
            .map(|id| (Disposition::Attachment, id))
    }
}

/// A fresh random link token (24 bytes, URL-safe).
fn link_token() -> String {
    let mut bytes = [0u8; 24];
    rand::Rng::fill(&mut rand::rng(), &mut bytes[..]);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

async fn link(
    state: &AppState,
    auth: &Authenticated,
    id: &str,
    disposition: Disposition,
) -> Result<Json<MediaLink>, ApiError> {
    let rec = visible(state, auth, id).await?;
    if rec.state != RecordingState::Ready {
        return Err(ApiError::Conflict(format!(
            "the recording is {}, not ready",
            rec.state.as_str()
        )));
    }
    let action = match disposition {
        Disposition::Inline => "recording.play",
        Disposition::Attachment => "recording.download",
    };
    crate::audit::record(&state.store, auth, action, &rec.id).await?;
    let token = link_token();
    state
        .links
        .put(&token, link_value(disposition, &rec.id), LINK_TTL)
        .await?;
    Ok(Json(MediaLink {
        url: format!("/media/recordings/{token}"),
        expires_in_secs: LINK_TTL.as_secs(),
    }))
}

/// `GET /media/recordings/{token}`: the bytes, with `Range` support.
pub async fn media(
    State(state): State<AppState>,
    Path(token): Path<String>,
    headers: HeaderMap,
) -> Response {
    let value = match state.links.get(&token).await {
        Ok(value) => value,
        Err(e) => {
            warn!("play link lookup failed: {e}");
            return StatusCode::SERVICE_UNAVAILABLE.into_response();
        }
    };
    let Some((disposition, recording_id)) = value.as_deref().and_then(parse_link) else {
        return (StatusCode::NOT_FOUND, "this link expired or never existed").into_response();
    };
    let rec = match state.store.recording(recording_id).await {
        Ok(Some(r)) => r,
        Ok(None) => return StatusCode::NOT_FOUND.into_response(),
        Err(e) => {
            warn!("recording lookup failed: {e}");
            return StatusCode::SERVICE_UNAVAILABLE.into_response();
        }
    };
    let range = headers
        .get(header::RANGE)
        .and_then(|v| v.to_str().ok())
        .map(str::trim);
    if let Some(r) = range
        && !valid_range(r)
    {
        return (
            StatusCode::RANGE_NOT_SATISFIABLE,
            "only single byte ranges are supported",
        )
            .into_response();
    }
    let read = match state
        .recordings
        .storage
        .store
        .read(&rec.object_key, range)
        .await
    {
        Ok(r) => r,
        Err(e) if e.message.contains("416") || e.message.contains("InvalidRange") => {
            return StatusCode::RANGE_NOT_SATISFIABLE.into_response();
        }
        Err(e) if e.not_found => return StatusCode::NOT_FOUND.into_response(),
        Err(e) => {
            warn!(recording = %rec.id, "object store read failed: {e}");
            return (StatusCode::BAD_GATEWAY, "the object store is unavailable").into_response();
        }
    };
    let status = if read.content_range.is_some() {
        StatusCode::PARTIAL_CONTENT
    } else {
        StatusCode::OK
    };
    let disposition = match disposition {
        Disposition::Inline => "inline",
        Disposition::Attachment => "attachment",
    };
    let mut resp = Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, rec.kind.content_type())
        .header(header::ACCEPT_RANGES, "bytes")
        .header(header::CONTENT_LENGTH, read.content_length)
        .header(header::CACHE_CONTROL, "private, no-store");
    if let Ok(v) = HeaderValue::from_str(&content_disposition(disposition, &rec.display_name)) {
        resp = resp.header(header::CONTENT_DISPOSITION, v);
    }
    if let Some(cr) = read
        .content_range
        .as_deref()
        .and_then(|c| HeaderValue::from_str(c).ok())
    {
        resp = resp.header(header::CONTENT_RANGE, cr);
    }
    let body = futures_util::stream::unfold(read.body, |mut body| async move {
        match body.try_next().await {
            Ok(Some(chunk)) => Some((Ok::<_, std::io::Error>(chunk), body)),
            Ok(None) => None,
            Err(e) => Some((Err(std::io::Error::other(e)), body)),
        }
    });
    resp.body(Body::from_stream(body))
        .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response())
}

/// `bytes=a-b`, `bytes=a-` or `bytes=-n`: one range, digits only.
fn valid_range(r: &str) -> bool {
    let Some(spec) = r.strip_prefix("bytes=") else {
        return false;
    };
    let Some((a, b)) = spec.split_once('-') else {
        return false;
    };
    let digits = |s: &str| s.len() <= 19 && s.chars().all(|c| c.is_ascii_digit());
    !(a.is_empty() && b.is_empty()) && digits(a) && digits(b) && !spec.contains(',')
}

#[cfg(test)]
mod tests {
    use super::valid_range;

    #[test]
    fn ranges() {
        for ok in ["bytes=0-99", "bytes=100-", "bytes=-500"] {
            assert!(valid_range(ok), "{ok}");
        }
        for bad in [
            "bytes=-",
            "bytes=0-1,5-6",
            "items=0-1",
            "bytes=a-b",
            "bytes=99999999999999999999-",
        ] {
            assert!(!valid_range(bad), "{bad}");
        }
    }
}
