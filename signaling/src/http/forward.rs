//! A request for a verification attempt this node does not hold goes to the node that
//! does (`cluster::forward`); its answer comes back as if this node gave it. A request
//! another node forwarded here is answered here, whatever happens.

use std::net::SocketAddr;

use axum::body::Body;
use axum::extract::{ConnectInfo, FromRequestParts, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use tracing::warn;

use crate::cluster::forward::{DEVICE_HEADER, ForwardRequest, ForwardedHere, HeldKey, held_key};
use crate::http::auth::Authenticated;
use crate::http::error::ApiError;
use crate::state::AppState;
use crate::verification::attempt_http::MAX_FRAME_BYTES;

/// The headers the attempt handlers read; nothing else crosses to the other node.
const CARRIED: &[&str] = &[
    "authorization",
    "content-type",
    DEVICE_HEADER,
    "accept-language",
];
/// Bodies of the attempt requests that carry no frame (JSON at most).
const MAX_OTHER_BODY_BYTES: usize = 64 * 1024;

pub async fn to_holder(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let Some(key) = held_key(request.uri().path(), request.headers()) else {
        return next.run(request).await;
    };
    if request.extensions().get::<ForwardedHere>().is_some() || state.attempts.holds(&key) {
        return next.run(request).await;
    }
    // The holder limits by the client's address, as this node would.
    let peer = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| {
            let client = state.guard.client_ip(c.0.ip(), request.headers());
            SocketAddr::new(client, c.0.port()).to_string()
        })
        .unwrap_or_default();
    let (mut parts, body) = request.into_parts();
    // The agent's own requests are signed in here first: nothing unauthenticated
    // crosses to another node. (A phone's link and device tokens are checked where
    // the attempt is; an unknown one has no holder and is answered here.)
    if matches!(key, HeldKey::Attempt(_))
        && let Err(refused) = Authenticated::from_request_parts(&mut parts, &state).await
    {
        return refused.into_response();
    }
    let limit = if parts.uri.path().ends_with("/frames") {
        MAX_FRAME_BYTES
    } else {
        MAX_OTHER_BODY_BYTES
    };
    let Ok(body) = axum::body::to_bytes(body, limit).await else {
        return ApiError::PayloadTooLarge.into_response();
    };
    let headers = CARRIED
        .iter()
        .filter_map(|name| {
            let value = parts.headers.get(*name)?.to_str().ok()?;
            Some(((*name).to_owned(), value.to_owned()))
        })
        .collect();
    let forwarded = ForwardRequest {
        method: parts.method.to_string(),
        uri: parts
            .uri
            .path_and_query()
            .map(|p| p.as_str().to_owned())
            .unwrap_or_default(),
        headers,
        body: body.to_vec(),
        peer,
    };
    match state.forwarder.forward(&key, forwarded).await {
        Ok(Some(answer)) => {
            let status = StatusCode::from_u16(answer.status).unwrap_or(StatusCode::BAD_GATEWAY);
            let mut response = (status, answer.body).into_response();
            if let Some(kind) = answer
                .content_type
                .and_then(|t| HeaderValue::from_str(&t).ok())
            {
                response.headers_mut().insert(header::CONTENT_TYPE, kind);
            }
            response
        }
        // Nobody else holds it: answered here (an unknown attempt is a 404).
        Ok(None) => next.run(Request::from_parts(parts, Body::from(body))).await,
        Err(e) => {
            warn!("attempt request not forwarded: {e}");
            ApiError::ClusterUnavailable(e).into_response()
        }
    }
}

#[cfg(test)]
mod tests {
    use axum::http::{HeaderMap, HeaderValue};

    use crate::cluster::forward::{DEVICE_HEADER, HeldKey, held_key};

    #[test]
    fn attempt_paths_name_what_they_need() {
        let none = HeaderMap::new();
        let attempt = |id: &str| Some(HeldKey::Attempt(id.to_owned()));
        assert_eq!(
            held_key("/api/v1/me/verification/attempts/a1", &none),
            attempt("a1")
        );
        assert_eq!(
            held_key("/api/v1/me/verification/attempts/a1/frames", &none),
            attempt("a1")
        );
        assert_eq!(
            held_key("/api/v1/me/verification/attempts/a1/phone-link", &none),
            attempt("a1")
        );
        // Starting one opens it here.
        assert_eq!(held_key("/api/v1/me/verification/attempts", &none), None);
        assert_eq!(held_key("/api/v1/me/verification/attempts/", &none), None);
        assert_eq!(
            held_key("/api/v1/phone-verification/tok", &none),
            Some(HeldKey::Link("tok".into()))
        );
        assert_eq!(held_key("/api/v1/phone-verification/frames", &none), None);
        let mut device = HeaderMap::new();
        device.insert(DEVICE_HEADER, HeaderValue::from_static("dev"));
        assert_eq!(
            held_key("/api/v1/phone-verification/frames", &device),
            Some(HeldKey::Device("dev".into()))
        );
        assert_eq!(held_key("/api/v1/recordings", &device), None);
    }
}
