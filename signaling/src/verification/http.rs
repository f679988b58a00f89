//! The operations dashboard's face-verification records: list with filters, CSV export.
//! ID numbers are only ever shown masked.

use axum::Json;
use axum::extract::{Query, State};
use axum::http::header;
use axum::response::IntoResponse;
use chrono::DateTime;
use serde::{Deserialize, Serialize};

use super::gate::check_gate;
use super::{VerificationFilter, VerificationRecord};
use crate::accounts::secrets::mask_id_number;
use crate::accounts::{UserId, UserRole};
use crate::http::auth::Authenticated;
use crate::http::error::ApiError;
use crate::state::AppState;

/// Rows one request returns at most.
const MAX_ROWS: u32 = 5000;

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct VerificationQuery {
    pub agent_id: Option<String>,
    /// Inclusive, Unix milliseconds.
    pub from: Option<i64>,
    /// Exclusive, Unix milliseconds.
    pub to: Option<i64>,
    /// `passed` or `failed`.
    pub result: Option<String>,
}

/// One row of the dashboard.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct VerificationView {
    pub id: String,
    pub checked_at: i64,
    pub main_account: String,
    pub agent_id: String,
    pub agent_name: String,
    pub id_number_masked: Option<String>,
    pub passed: bool,
    pub passed_at: Option<i64>,
    /// For a failure: `no_face`, `different_person`, `liveness_not_shown`, `timed_out`.
    pub failure_reason: Option<String>,
    /// The engine's finer reason (`planar_motion`, `mirrored`, `wrong_direction`, …).
    pub failure_detail: Option<String>,
    /// `workbench` or `phone`.
    pub channel: String,
}

fn filter_of(q: VerificationQuery) -> Result<VerificationFilter, ApiError> {
    let passed = match q.result.as_deref() {
        None | Some("") => None,
        Some("passed") => Some(true),
        Some("failed") => Some(false),
        Some(_) => return Err(ApiError::field("result", "passed or failed")),
    };
    if let (Some(from), Some(to)) = (q.from, q.to)
        && from >= to
    {
        return Err(ApiError::field("to", "must be after from"));
    }
    Ok(VerificationFilter {
        agent_id: q.agent_id.filter(|a| !a.is_empty()).map(UserId),
        from: q.from,
        to: q.to,
        passed,
    })
}

async fn rows(
    state: &AppState,
    auth: &Authenticated,
    q: VerificationQuery,
) -> Result<Vec<VerificationView>, ApiError> {
    auth.require(UserRole::Admin)?;
    let enterprise = state
        .store
        .enterprise(&auth.user.enterprise_id)
        .await?
        .ok_or(ApiError::NotFound)?;
    let records = state
        .store
        .verifications(&enterprise.id, &filter_of(q)?, MAX_ROWS)
        .await?;
    Ok(records
        .iter()
        .map(|r| view(state, r, &enterprise.main_account))
        .collect())
}

fn view(state: &AppState, r: &VerificationRecord, main_account: &str) -> VerificationView {
    VerificationView {
        id: r.id.to_string(),
        checked_at: r.checked_at,
        main_account: main_account.to_owned(),
        agent_id: r.agent_id.to_string(),
        agent_name: r.agent_name.clone(),
        id_number_masked: r
            .id_number_enc
            .as_deref()
            .and_then(|enc| state.data_key.decrypt(enc).ok())
            .map(|plain| mask_id_number(&plain)),
        passed: r.passed,
        passed_at: r.passed_at,
        failure_reason: r.failure_reason.clone(),
        failure_detail: r.failure_detail.clone(),
        channel: r.channel.clone(),
    }
}

#[utoipa::path(get, path = "/api/v1/verifications", tag = "verifications", security(("bearer" = [])), params(VerificationQuery), responses((status = 200, body = Vec<VerificationView>), (status = 401, description = "no valid session", body = crate::http::error::ApiErrorDoc), (status = 403, description = "forbidden by role or rule", body = crate::http::error::ApiErrorDoc), (status = 422, description = "invalid input", body = crate::http::error::ApiErrorDoc)))]
pub async fn list(
    State(state): State<AppState>,
    auth: Authenticated,
    Query(q): Query<VerificationQuery>,
) -> Result<Json<Vec<VerificationView>>, ApiError> {
    let rows = rows(&state, &auth, q).await?;
    // Reading the records (names, masked ID numbers) is audited.
    crate::audit::record(
        &state.store,
        &auth,
        "verifications_read",
        "verification_records",
    )
    .await?;
    Ok(Json(rows))
}

#[utoipa::path(get, path = "/api/v1/verifications.csv", tag = "verifications", security(("bearer" = [])), params(VerificationQuery), responses((status = 200, content_type = "text/csv", description = "the same rows as CSV"), (status = 401, description = "no valid session", body = crate::http::error::ApiErrorDoc), (status = 403, description = "forbidden by role or rule", body = crate::http::error::ApiErrorDoc), (status = 422, description = "invalid input", body = crate::http::error::ApiErrorDoc)))]
pub async fn csv(
    State(state): State<AppState>,
    auth: Authenticated,
    Query(q): Query<VerificationQuery>,
) -> Result<impl IntoResponse, ApiError> {
    let rows = rows(&state, &auth, q).await?;
    crate::audit::record(
        &state.store,
        &auth,
        "verifications_exported",
        "verification_records",
    )
    .await?;
    let mut out = String::from(
        "checked_at,main_account,agent_id,agent_name,id_number,result,passed_at,failure_reason,failure_detail,channel\r\n",
    );
    for r in &rows {
        let fields = [
            utc(r.checked_at),
            r.main_account.clone(),
            r.agent_id.clone(),
            r.agent_name.clone(),
            r.id_number_masked.clone().unwrap_or_default(),
            if r.passed { "passed" } else { "failed" }.to_owned(),
            r.passed_at.map(utc).unwrap_or_default(),
            r.failure_reason.clone().unwrap_or_default(),
            r.failure_detail.clone().unwrap_or_default(),
            r.channel.clone(),
        ];
        let line: Vec<String> = fields.iter().map(|f| csv_field(f)).collect();
        out.push_str(&line.join(","));
        out.push_str("\r\n");
    }
    Ok((
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8"),
            (
                header::CONTENT_DISPOSITION,
                "attachment; filename=\"verifications.csv\"",
            ),
        ],
        // A BOM so spreadsheet programs read the Chinese names as UTF-8.
        format!("\u{feff}{out}"),
    ))
}

/// RFC 3339 in UTC.
fn utc(ms: i64) -> String {
    DateTime::from_timestamp_millis(ms)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
        .unwrap_or_default()
}

/// Quotes a CSV field when needed; a leading formula character is neutralised so a
/// spreadsheet never evaluates stored text.
fn csv_field(value: &str) -> String {
    let value = if value.starts_with(['=', '+', '-', '@']) {
        format!("'{value}")
    } else {
        value.to_owned()
    };
    if value.contains([',', '"', '\r', '\n']) {
        format!("\"{}\"", value.replace('"', "\"\""))
    } else {
        value
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_fields_are_quoted_and_formulas_neutralised() {
        assert_eq!(csv_field("plain"), "plain");
        assert_eq!(csv_field("a,b"), "\"a,b\"");
        assert_eq!(csv_field("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(csv_field("=HYPERLINK(1)"), "'=HYPERLINK(1)");
    }

    #[test]
    fn times_are_utc_rfc3339() {
        assert_eq!(utc(0), "1970-01-01T00:00:00Z");
        assert_eq!(utc(1_764_000_000_000), "2025-11-24T16:00:00Z");
    }
}

/// Whether the agent's next outgoing call needs a face verification first.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct GateView {
    pub verification_required: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<serde_json::Value>,
    /// Whether an admin has enrolled this agent's face (without it no check can pass).
    #[serde(default)]
    pub enrolled: bool,
    /// Locked after repeated failures until an admin clears it.
    #[serde(default)]
    pub locked: bool,
}

#[utoipa::path(get, path = "/api/v1/me/verification-gate", tag = "verification", security(("bearer" = [])), responses((status = 200, body = GateView), (status = 401, description = "no valid session", body = crate::http::error::ApiErrorDoc), (status = 403, description = "forbidden by role or rule", body = crate::http::error::ApiErrorDoc)))]
pub async fn gate(
    State(state): State<AppState>,
    auth: Authenticated,
) -> Result<Json<GateView>, ApiError> {
    auth.require(UserRole::Agent)?;
    let facts = super::gate_facts(&state.store, &auth.user, auth.session_started_at)
        .await
        .map_err(ApiError::from)?;
    let enrolled = state.store.face_reference(&auth.user.id).await?.is_some();
    let locked = state
        .store
        .verification_lock(&auth.user.id)
        .await?
        .is_locked();
    let (verification_required, reason) = match check_gate(facts) {
        Ok(()) => (false, None),
        Err(due) => (true, serde_json::to_value(due).ok()),
    };
    Ok(Json(GateView {
        verification_required,
        reason,
        enrolled,
        locked,
    }))
}
