//! Who a request comes from, and the bounds every request keeps: a per-client rate for
//! what anyone may ask without signing in (a flood from one address cannot starve the
//! others), and a deadline for the answer.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use axum::extract::{ConnectInfo, FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::error::ApiError;
use super::limits::HttpGuard;
use crate::state::AppState;

/// Paths that need no sign-in: the pages, their assets, the customer's and the phone's
/// endpoints, capability links and the WebSockets (which carry tokens of their own).
const ANONYMOUS: &[&str] = &[
    "/api/v1/auth/login",
    "/api/v1/service/",
    "/api/v1/invites/",
    "/api/v1/phone-verification/",
    "/api/openapi.json",
    "/media/recordings/",
    "/static/",
    "/ws",
    "/workbench",
    "/admin",
    "/agent",
    "/customer",
    "/verify/",
    "/invite/",
    "/service/",
];

/// The client's address (see [`HttpGuard::client_ip`]), for rate limits; shown as the
/// key its allowance counts under (an IPv6 client by its /64).
#[derive(Debug, Clone, Copy)]
pub struct ClientIp(pub IpAddr);

impl std::fmt::Display for ClientIp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&HttpGuard::limit_key(self.0))
    }
}

impl FromRequestParts<AppState> for ClientIp {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        Ok(Self(client_of(parts, state)))
    }
}

fn client_of(parts: &Parts, state: &AppState) -> IpAddr {
    let peer = parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip())
        .unwrap_or(IpAddr::from([127, 0, 0, 1]));
    state.guard.client_ip(peer, &parts.headers)
}

fn anonymous(path: &str) -> bool {
    path == "/" || ANONYMOUS.iter().any(|p| path.starts_with(p))
}

/// Counts what anyone may ask against the client's rate, and every request whose
/// sign-in fails (so a made-up token is no way around it).
pub async fn guard(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let path = request.uri().path();
    if path == "/healthz" || path == "/metrics" {
        return next.run(request).await;
    }
    let (parts, body) = request.into_parts();
    let client = HttpGuard::limit_key(client_of(&parts, &state));
    // A phone's face check sends a frame every 300 ms with its device token: counted
    // like a signed-in request (only a refused one), or a few phones behind one
    // address would use up the allowance mid-check.
    let phone_frame = parts.uri.path() == "/api/v1/phone-verification/frames"
        && parts
            .headers
            .contains_key(crate::cluster::forward::DEVICE_HEADER);
    let counted = anonymous(parts.uri.path()) && !phone_frame;
    if counted && !state.guard.allow_anonymous(&client) {
        return rate_limited();
    }
    let response = next.run(Request::from_parts(parts, body)).await;
    if !counted
        && response.status() == StatusCode::UNAUTHORIZED
        && !state.guard.allow_anonymous(&client)
    {
        return rate_limited();
    }
    response
}

/// Answers 504 `timeout` to a request still unanswered after `limit` (504, not 503: a
/// proxy must not send the same slow request to another node). A face enrolment is
/// exempt: its upload alone (up to 42 MiB) may take longer on a slow line.
pub async fn deadline(State(limit): State<Duration>, request: Request, next: Next) -> Response {
    if request.method() == axum::http::Method::PUT
        && request.uri().path().ends_with("/face-reference")
    {
        return next.run(request).await;
    }
    match tokio::time::timeout(limit, next.run(request)).await {
        Ok(response) => response,
        Err(_) => ApiError::Timeout.into_response(),
    }
}

fn rate_limited() -> Response {
    let mut response = ApiError::RateLimited.into_response();
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from_static("60"));
    response
}

#[cfg(test)]
mod tests {
    use axum::Router;
    use axum::body::Body;
    use axum::routing::get;
    use std::time::Instant;
    use tower::ServiceExt;

    use super::*;

    #[tokio::test]
    async fn a_request_past_its_deadline_is_answered_timeout() {
        let app = Router::new()
            .route("/fast", get(|| async { "done" }))
            .route(
                "/slow",
                get(|| async {
                    tokio::time::sleep(Duration::from_secs(5)).await;
                    "late"
                }),
            )
            .layer(axum::middleware::from_fn_with_state(
                Duration::from_millis(100),
                deadline,
            ));
        let ask = |path: &'static str| {
            let app = app.clone();
            async move {
                let request = Request::builder()
                    .uri(path)
                    .body(Body::empty())
                    .expect("request");
                let Ok(response) = app.oneshot(request).await;
                let status = response.status();
                let body = axum::body::to_bytes(response.into_body(), 4096)
                    .await
                    .expect("body");
                (status, String::from_utf8_lossy(&body).into_owned())
            }
        };
        assert_eq!(ask("/fast").await, (StatusCode::OK, "done".to_owned()));
        let started = Instant::now();
        let (status, body) = ask("/slow").await;
        assert_eq!(status, StatusCode::GATEWAY_TIMEOUT);
        assert!(body.contains("\"timeout\""), "{body}");
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "answered at the deadline"
        );
    }

    #[test]
    fn what_needs_no_sign_in_is_counted() {
        for path in [
            "/",
            "/workbench",
            "/static/call.js",
            "/api/v1/auth/login",
            "/api/v1/service/4001/requests",
            "/ws",
            "/ws/events",
            "/media/recordings/t",
            "/api/v1/phone-verification/frames",
        ] {
            assert!(anonymous(path), "{path}");
        }
        for path in ["/api/v1/me", "/api/v1/recordings", "/api/v1/calls/x"] {
            assert!(!anonymous(path), "{path}");
        }
    }
}
