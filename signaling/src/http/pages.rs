//! The web pages, compiled into the binary so `kefu` is one file to deploy.

use axum::Router;
use axum::http::header;
use axum::response::{Html, IntoResponse, Redirect};
use axum::routing::get;

use crate::state::AppState;

const AGENT_HTML: &str = include_str!("../../../web/agent.html");
const CUSTOMER_HTML: &str = include_str!("../../../web/customer.html");
const WORKBENCH_HTML: &str = include_str!("../../../web/workbench.html");
const INVITE_HTML: &str = include_str!("../../../web/invite.html");
const CALL_JS: &str = include_str!("../../../web/call.js");
const STRINGS_JS: &str = include_str!("../../../web/strings.js");
const WORKBENCH_JS: &str = include_str!("../../../web/workbench.js");
const INVITE_JS: &str = include_str!("../../../web/invite.js");
const SERVICE_HTML: &str = include_str!("../../../web/service.html");
const ADMIN_HTML: &str = include_str!("../../../web/admin.html");
const ADMIN_JS: &str = include_str!("../../../web/admin.js");
const SERVICE_JS: &str = include_str!("../../../web/service.js");
const STYLE_CSS: &str = include_str!("../../../web/style.css");
const VERIFY_HTML: &str = include_str!("../../../web/verify.html");
const VERIFY_JS: &str = include_str!("../../../web/verify.js");

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/", get(|| async { Redirect::to("/workbench") }))
        .route("/admin", get(|| async { Html(ADMIN_HTML) }))
        .route(
            "/static/admin.js",
            get(|| async { asset("text/javascript; charset=utf-8", ADMIN_JS) }),
        )
        .route("/workbench", get(|| async { Html(WORKBENCH_HTML) }))
        // The agent's phone, from the workbench's QR code: a face check by link.
        .route("/verify/{token}", get(|| async { Html(VERIFY_HTML) }))
        .route(
            "/static/verify.js",
            get(|| async { asset("text/javascript; charset=utf-8", VERIFY_JS) }),
        )
        .route("/invite/{code}", get(|| async { Html(INVITE_HTML) }))
        .route(
            "/service/{main_account}",
            get(|| async { Html(SERVICE_HTML) }),
        )
        .route(
            "/static/service.js",
            get(|| async { asset("text/javascript; charset=utf-8", SERVICE_JS) }),
        )
        .route(
            "/static/workbench.js",
            get(|| async { asset("text/javascript; charset=utf-8", WORKBENCH_JS) }),
        )
        .route(
            "/static/invite.js",
            get(|| async { asset("text/javascript; charset=utf-8", INVITE_JS) }),
        )
        .route("/agent", get(|| async { Html(AGENT_HTML) }))
        .route("/customer", get(|| async { Html(CUSTOMER_HTML) }))
        .route(
            "/static/call.js",
            get(|| async { asset("text/javascript; charset=utf-8", CALL_JS) }),
        )
        .route(
            "/static/strings.js",
            get(|| async { asset("text/javascript; charset=utf-8", STRINGS_JS) }),
        )
        .route(
            "/static/style.css",
            get(|| async { asset("text/css; charset=utf-8", STYLE_CSS) }),
        )
}

fn asset(content_type: &'static str, body: &'static str) -> impl IntoResponse {
    ([(header::CONTENT_TYPE, content_type)], body)
}
