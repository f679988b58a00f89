//! Health, metrics, TLS and graceful shutdown of the whole server.

use std::time::Duration;

use kefu_proto::signaling::ServerMessage;
use kefu_signaling::config::TlsConfig;
use kefu_signaling::rooms::token::Side;
use kefu_tests::signaling::Closed;
use kefu_tests::{SignalingClient, spawn_app, spawn_app_with};

#[tokio::test]
async fn health_and_metrics_answer() {
    let server = spawn_app().await;
    let health = reqwest::get(format!("{}/healthz", server.base_url))
        .await
        .expect("GET");
    assert_eq!(health.status(), 200);
    assert_eq!(health.text().await.expect("body"), r#"{"status":"ok"}"#);

    let metrics = server.metrics().await;
    for name in [
        "kefu_calls ",
        "kefu_participants ",
        "kefu_sfu_packets_forwarded_total ",
        "kefu_sfu_packets_dropped_total{reason=\"malformed\"} ",
        "kefu_sfu_packets_dropped_total{reason=\"unknown_source\"} ",
    ] {
        assert!(metrics.contains(name), "{name} missing from:\n{metrics}");
    }
}

#[tokio::test]
async fn pages_are_served() {
    let server = spawn_app().await;
    for (path, needle) in [
        ("/agent", "agent"),
        ("/customer", "viewport"),
        ("/static/call.js", "RTCPeerConnection"),
    ] {
        let res = reqwest::get(format!("{}{path}", server.base_url))
            .await
            .expect("GET");
        assert_eq!(res.status(), 200, "{path}");
        assert!(res.text().await.expect("body").contains(needle), "{path}");
    }
}

#[tokio::test]
async fn every_response_carries_the_security_headers() {
    let server = spawn_app().await;
    let client = reqwest::Client::new();
    for (path, status) in [
        ("/workbench", 200),
        ("/invite/some-code", 200),
        ("/static/call.js", 200),
        ("/healthz", 200),
        ("/api/v1/me", 401),
        ("/api/v1/no-such-route", 404),
    ] {
        let res = client
            .get(format!("{}{path}", server.base_url))
            .send()
            .await
            .expect("GET");
        assert_eq!(res.status(), status, "{path}");
        let h = res.headers();
        let header = |name: &str| {
            h.get(name)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_owned()
        };
        assert_eq!(header("x-content-type-options"), "nosniff", "{path}");
        assert_eq!(header("referrer-policy"), "no-referrer", "{path}");
        assert_eq!(header("x-frame-options"), "DENY", "{path}");
        let csp = header("content-security-policy");
        assert!(csp.contains("frame-ancestors 'none'"), "{path}: {csp}");
        assert!(csp.contains("script-src 'self'"), "{path}: {csp}");
        assert!(
            !csp.contains("unsafe-inline") && !csp.contains("unsafe-eval"),
            "{path}: {csp}"
        );
        assert_eq!(
            header("strict-transport-security"),
            "",
            "no HSTS over plain HTTP: {path}"
        );
        if path.starts_with("/api/") {
            assert_eq!(header("cache-control"), "no-store", "{path}");
        }
    }
}

#[tokio::test]
async fn the_pages_hold_no_inline_script_or_style() {
    // What the content security policy refuses must not be in the pages themselves.
    let server = spawn_app().await;
    for path in [
        "/workbench",
        "/admin",
        "/agent",
        "/customer",
        "/invite/x",
        "/service/x",
        "/verify/x",
    ] {
        let page = reqwest::get(format!("{}{path}", server.base_url))
            .await
            .expect("GET")
            .text()
            .await
            .expect("body");
        let lower = page.to_lowercase();
        assert!(lower.contains("<script src="), "{path} loads its script");
        assert_eq!(
            lower.matches("<script").count(),
            lower.matches("<script src=").count(),
            "{path}: an inline <script>"
        );
        assert!(!lower.contains("<style"), "{path}: an inline <style>");
        assert!(!lower.contains(" style="), "{path}: a style attribute");
        let handler = lower.match_indices(" on").any(|(i, _)| {
            lower[i + 3..]
                .chars()
                .take_while(|c| c.is_ascii_alphabetic())
                .count()
                > 2
                && lower[i + 3..]
                    .trim_start_matches(|c: char| c.is_ascii_alphabetic())
                    .starts_with('=')
        });
        assert!(!handler, "{path}: an inline event handler");
    }
}

#[tokio::test]
async fn https_is_served_when_a_certificate_is_configured() {
    let dir = tempfile::tempdir().expect("dir");
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".into(), "127.0.0.1".into()])
        .expect("self-signed certificate");
    let cert_path = dir.path().join("cert.pem");
    let key_path = dir.path().join("key.pem");
    std::fs::write(&cert_path, cert.cert.pem()).expect("write cert");
    std::fs::write(&key_path, cert.signing_key.serialize_pem()).expect("write key");

    let server = spawn_app_with(|c| {
        c.server.tls = Some(TlsConfig {
            cert_path: cert_path.clone(),
            key_path: key_path.clone(),
        })
    })
    .await;
    assert!(
        server.base_url.starts_with("https://"),
        "{}",
        server.base_url
    );
    let client = reqwest::Client::builder()
        .add_root_certificate(
            reqwest::Certificate::from_pem(cert.cert.pem().as_bytes()).expect("pem"),
        )
        .build()
        .expect("client");
    let url = server.base_url.replace("127.0.0.1", "localhost") + "/healthz";
    let res = client.get(url).send().await.expect("HTTPS GET");
    assert_eq!(res.status(), 200);
    assert_eq!(
        res.headers()
            .get("strict-transport-security")
            .and_then(|v| v.to_str().ok()),
        Some("max-age=31536000; includeSubDomains"),
        "HSTS over HTTPS"
    );

    // Plain HTTP on the TLS port is not served.
    let plain = server.base_url.replace("https://", "http://") + "/healthz";
    assert!(
        reqwest::get(plain).await.is_err(),
        "no plaintext on the TLS port"
    );
}

#[tokio::test]
async fn a_missing_certificate_is_a_clear_startup_error() {
    let dir = tempfile::tempdir().expect("dir");
    let mut config = loopback_config(dir.path());
    config.moderation.models_dir =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../models");
    config.server.tls = Some(TlsConfig {
        cert_path: dir.path().join("missing-cert.pem"),
        key_path: dir.path().join("missing-key.pem"),
    });
    let err = kefu::App::build(config).await.expect_err("no certificate");
    assert!(format!("{err:#}").contains("missing-cert.pem"), "{err:#}");
}

#[tokio::test]
async fn shutdown_closes_sessions_with_going_away() {
    let server = spawn_app().await;
    let mut ws = SignalingClient::connect(&server.ws_url).await;
    let joined = ws.join(&server.token("call", "a", Side::Agent)).await;
    assert!(matches!(joined, ServerMessage::Joined { .. }));
    let stopping = tokio::spawn(server.stop());
    assert_eq!(ws.closed().await, Closed::Code(1001));
    tokio::time::timeout(Duration::from_secs(5), stopping)
        .await
        .expect("stops within the grace period")
        .expect("task")
        .expect("clean stop");
}

#[tokio::test]
async fn the_openapi_document_describes_every_api_route() {
    let server = spawn_app().await;
    let res = reqwest::get(format!("{}/api/openapi.json", server.base_url))
        .await
        .expect("GET");
    assert_eq!(res.status(), 200);
    let doc: serde_json::Value = res.json().await.expect("json");
    assert!(doc["openapi"].as_str().is_some_and(|v| v.starts_with("3.")));
    let paths = doc["paths"].as_object().expect("paths");
    for (path, method) in [
        ("/api/v1/auth/login", "post"),
        ("/api/v1/auth/logout", "post"),
        ("/api/v1/me", "get"),
        ("/api/v1/me/presence", "put"),
        ("/api/v1/me/verification-gate", "get"),
        ("/api/v1/me/queue", "get"),
        ("/api/v1/me/beauty", "get"),
        ("/api/v1/me/beauty", "put"),
        ("/api/v1/me/beauty/reset", "post"),
        ("/api/v1/agents", "get"),
        ("/api/v1/agents/{id}/video-service", "put"),
        ("/api/v1/calls", "post"),
        ("/api/v1/calls/{id}", "get"),
        ("/api/v1/calls/{id}/cancel", "post"),
        ("/api/v1/calls/{id}/accept", "post"),
        ("/api/v1/calls/{id}/room-token", "get"),
        ("/api/v1/calls/{id}/invite.svg", "get"),
        ("/api/v1/invites/{code}", "get"),
        ("/api/v1/invites/{code}/accept", "post"),
        ("/api/v1/service/{main_account}", "get"),
        ("/api/v1/service/{main_account}/requests", "post"),
        ("/api/v1/service/requests/{id}", "get"),
        ("/api/v1/service/requests/{id}/cancel", "post"),
        ("/api/v1/verifications", "get"),
        ("/api/v1/verifications.csv", "get"),
    ] {
        assert!(
            paths.get(path).and_then(|p| p.get(method)).is_some(),
            "{method} {path} is documented"
        );
    }
    let schemas = doc["components"]["schemas"].as_object().expect("schemas");
    for name in [
        "UserView",
        "CallView",
        "CallState",
        "ApiErrorDoc",
        "BeautyView",
        "VerificationView",
    ] {
        assert!(schemas.contains_key(name), "schema {name}");
    }
}

#[tokio::test]
async fn a_missing_moderation_model_is_a_clear_startup_error() {
    let dir = tempfile::tempdir().expect("dir");
    let mut config = loopback_config(dir.path());
    config.moderation.models_dir = dir.path().join("no-models-here");
    let err = kefu::App::build(config)
        .await
        .expect_err("no screening without its model");
    let text = format!("{err:#}");
    assert!(text.contains("content moderation model"), "{text}");
    assert!(text.contains("no-models-here"), "{text}");
}

/// A configuration of one node on loopback with its data in `dir`, built by hand (not
/// through `spawn_app`) to see what `App::build` refuses.
fn loopback_config(dir: &std::path::Path) -> kefu_signaling::KefuConfig {
    let mut config = kefu_signaling::KefuConfig {
        data_dir: dir.to_path_buf(),
        ..Default::default()
    };
    config.server.bind = ([127, 0, 0, 1], 0).into();
    config.media.port = 0;
    config.media.advertise_ip = Some([127, 0, 0, 1].into());
    config
}
