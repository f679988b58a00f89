//! Security headers on every response. The pages load only their own scripts and
//! styles (no inline code), so the content security policy needs no `unsafe-inline`;
//! nobody may frame them (clickjacking the workbench's buttons); links carry tokens in
//! their paths (`/invite/…`, `/verify/…`), so no page sends a referrer.

use axum::extract::{Request, State};
use axum::http::{HeaderName, HeaderValue, header};
use axum::middleware::Next;
use axum::response::Response;

use crate::state::AppState;

/// The pages' policy: their own scripts, styles, API and WebSockets; pictures and
/// media from the API or made in the page (QR codes, recordings, evidence).
/// `connect-src` names the WebSocket origin too: Safari before 16 does not count
/// `wss:` as `'self'`.
pub fn content_security_policy(public_url: &str) -> String {
    let socket = public_url
        .strip_prefix("https://")
        .map(|host| format!(" wss://{host}"))
        .or_else(|| {
            public_url
                .strip_prefix("http://")
                .map(|host| format!(" ws://{host}"))
        })
        .unwrap_or_default();
    format!(
        "default-src 'self'; script-src 'self'; style-src 'self'; \
         img-src 'self' blob: data:; media-src 'self' blob:; connect-src 'self'{socket}; \
         font-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; \
         frame-ancestors 'none'"
    )
}

/// A year, as browsers' preload lists expect.
const HSTS: &str = "max-age=31536000; includeSubDomains";

const ALWAYS: &[(HeaderName, &str)] = &[
    (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
    (header::REFERRER_POLICY, "no-referrer"),
    (header::X_FRAME_OPTIONS, "DENY"),
];

pub async fn secure(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let api = request.uri().path().starts_with("/api/");
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    for (name, value) in ALWAYS {
        headers.insert(name.clone(), HeaderValue::from_static(value));
    }
    if let Ok(policy) = HeaderValue::from_str(&content_security_policy(
        state.public_url.trim_end_matches('/'),
    )) {
        headers.insert(header::CONTENT_SECURITY_POLICY, policy);
    }
    headers.insert(
        HeaderName::from_static("permissions-policy"),
        HeaderValue::from_static("camera=(self), microphone=(self), geolocation=()"),
    );
    headers.insert(
        HeaderName::from_static("cross-origin-opener-policy"),
        HeaderValue::from_static("same-origin"),
    );
    // API answers hold personal data: no cache (browser or proxy) keeps them.
    if api && !headers.contains_key(header::CACHE_CONTROL) {
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    // Only where people reach kefu over HTTPS (its own TLS, or a proxy in front).
    if state.public_url.starts_with("https://") {
        headers.insert(
            header::STRICT_TRANSPORT_SECURITY,
            HeaderValue::from_static(HSTS),
        );
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_policy_names_the_websocket_origin_of_the_public_url() {
        let secure = content_security_policy("https://kefu.example.com");
        assert!(
            secure.contains("connect-src 'self' wss://kefu.example.com;"),
            "{secure}"
        );
        let plain = content_security_policy("http://127.0.0.1:8080");
        assert!(
            plain.contains("connect-src 'self' ws://127.0.0.1:8080;"),
            "{plain}"
        );
        assert!(!secure.contains("unsafe-inline") && secure.contains("frame-ancestors 'none'"));
    }
}
