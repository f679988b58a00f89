//! The account API: bootstrap, login, sessions, roles and tenancy.

use kefu_signaling::accounts::UserRole;
use kefu_tests::http::call;
use kefu_tests::spawn_app;
use reqwest::Method;
use serde_json::{Value, json};

const PASSWORD: &str = "correct horse battery";

#[tokio::test]
async fn first_start_seeds_an_admin_with_a_one_time_password() {
    let server = spawn_app().await;
    let creds = server.bootstrap.clone().expect("empty database is seeded");
    assert_eq!(creds.login, "admin");
    assert!(creds.password.0.len() >= 16);
    let token = server.login(&creds.login, &creds.password.0).await;
    let (status, me) = server.get("/api/v1/me", Some(&token)).await;
    assert_eq!(status, 200);
    assert_eq!(me["role"], "admin");
}

#[tokio::test]
async fn login_logout_and_revocation() {
    let server = spawn_app().await;
    server.enterprise("4001").await;
    server
        .user("4001", "alice", UserRole::Agent, PASSWORD)
        .await;

    let (status, body) = server
        .post(
            "/api/v1/auth/login",
            None,
            Some(json!({"login": "alice", "password": "wrong password"})),
        )
        .await;
    assert_eq!(status, 401);
    assert_eq!(body["error"], "unauthorized");
    let (status, _) = server
        .post(
            "/api/v1/auth/login",
            None,
            Some(json!({"login": "nobody", "password": PASSWORD})),
        )
        .await;
    assert_eq!(status, 401, "unknown logins look like wrong passwords");

    let token = server.login("alice", PASSWORD).await;
    let (status, me) = server.get("/api/v1/me", Some(&token)).await;
    assert_eq!(status, 200);
    assert_eq!(me["login"], "alice");
    assert_eq!(
        me["id_number_masked"], "110***********1234",
        "masked, never clear"
    );
    assert!(!me.to_string().contains("110101199003071234"));
    assert!(me.get("password_hash").is_none());

    let (status, _) = server.post("/api/v1/auth/logout", Some(&token), None).await;
    assert_eq!(status, 204);
    let (status, _) = server.get("/api/v1/me", Some(&token)).await;
    assert_eq!(status, 401, "a logged-out token is dead");
}

#[tokio::test]
async fn bad_login_input_is_a_clear_error() {
    let server = spawn_app().await;
    let base = &server.base_url;
    let (status, body) = server
        .post(
            "/api/v1/auth/login",
            None,
            Some(json!({"login": "", "password": "x"})),
        )
        .await;
    assert_eq!(status, 422);
    assert!(body["fields"]["login"].is_string(), "{body}");
    let (status, body) = server
        .post("/api/v1/auth/login", None, Some(json!({"login": "a"})))
        .await;
    assert_eq!(status, 422, "{body}");
    let res = reqwest::Client::new()
        .post(format!("{base}/api/v1/auth/login"))
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .expect("request");
    assert_eq!(res.status(), 400);
    let res = reqwest::Client::new()
        .post(format!("{base}/api/v1/auth/login"))
        .header("content-type", "application/json")
        .body(vec![b' '; 200 * 1024])
        .send()
        .await
        .expect("request");
    assert_eq!(res.status(), 413, "oversized bodies are refused");
}

#[tokio::test]
async fn login_attempts_are_rate_limited() {
    let server = kefu_tests::spawn_app_with(|c| c.auth.login_attempts_per_minute = 3).await;
    server.enterprise("4001").await;
    server
        .user("4001", "alice", UserRole::Agent, PASSWORD)
        .await;
    for _ in 0..3 {
        let (status, _) = server
            .post(
                "/api/v1/auth/login",
                None,
                Some(json!({"login": "alice", "password": "guess guess"})),
            )
            .await;
        assert_eq!(status, 401);
    }
    let (status, body) = server
        .post(
            "/api/v1/auth/login",
            None,
            Some(json!({"login": "alice", "password": PASSWORD})),
        )
        .await;
    assert_eq!(status, 429, "{body}");
}

/// GET `path` as if through a proxy that says the client is `client`.
async fn get_from(
    server: &kefu_tests::TestServer,
    path: &str,
    client: &str,
    token: Option<&str>,
) -> reqwest::Response {
    let mut request = reqwest::Client::new()
        .get(format!("{}{path}", server.base_url))
        .header("x-forwarded-for", client);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    request.send().await.expect("GET")
}

#[tokio::test]
async fn requests_without_a_sign_in_are_limited_per_client_behind_a_trusted_proxy() {
    let server = kefu_tests::spawn_app_with(|c| {
        c.server.anonymous_requests_per_minute = 5;
        // The tests connect from 127.0.0.1: here that is the load balancer.
        c.server.trusted_proxies = vec!["127.0.0.1/32".parse().expect("net")];
    })
    .await;
    let admin = server.bootstrap.clone().expect("seeded");
    let token = server.login(&admin.login, &admin.password.0).await;
    for n in 0..5 {
        let res = get_from(&server, "/workbench", "198.51.100.1", None).await;
        assert_eq!(res.status(), 200, "page {n}");
    }
    let refused = get_from(&server, "/workbench", "198.51.100.1", None).await;
    assert_eq!(refused.status(), 429);
    assert_eq!(
        refused
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok()),
        Some("60")
    );
    let body: Value = refused.json().await.expect("json");
    assert_eq!(body["error"], "rate_limited", "{body}");
    // Another client behind the same proxy has its own allowance.
    let other = get_from(&server, "/static/call.js", "198.51.100.2", None).await;
    assert_eq!(other.status(), 200);
    // Signed-in requests are not counted; failed sign-ins are.
    for _ in 0..10 {
        let res = get_from(&server, "/api/v1/me", "198.51.100.1", Some(&token)).await;
        assert_eq!(res.status(), 200);
    }
    for n in 0..5 {
        let res = get_from(&server, "/api/v1/me", "198.51.100.3", Some("made-up")).await;
        assert_eq!(res.status(), 401, "attempt {n}");
    }
    let res = get_from(&server, "/api/v1/me", "198.51.100.3", Some("made-up")).await;
    assert_eq!(
        res.status(),
        429,
        "a made-up token is no way around the limit"
    );
    // Health checks are never limited.
    let health = get_from(&server, "/healthz", "198.51.100.1", None).await;
    assert_eq!(health.status(), 200);
}

#[tokio::test]
async fn a_forwarded_for_header_from_an_untrusted_peer_changes_nothing() {
    let server = kefu_tests::spawn_app_with(|c| c.server.anonymous_requests_per_minute = 3).await;
    for n in 0..3 {
        let res = get_from(&server, "/workbench", &format!("198.51.100.{n}"), None).await;
        assert_eq!(res.status(), 200);
    }
    // A client naming itself anew each time is still the one peer.
    let res = get_from(&server, "/workbench", "198.51.100.99", None).await;
    assert_eq!(res.status(), 429);
}

#[tokio::test]
async fn admins_grant_video_service_to_their_own_agents_only() {
    let server = spawn_app().await;
    for e in ["4001", "4002"] {
        server.enterprise(e).await;
    }
    server
        .user("4001", "alice", UserRole::Agent, PASSWORD)
        .await;
    server.user("4001", "boss", UserRole::Admin, PASSWORD).await;
    server
        .user("4002", "rival", UserRole::Admin, PASSWORD)
        .await;
    let boss = server.login("boss", PASSWORD).await;
    let rival = server.login("rival", PASSWORD).await;

    let (status, agents) = server.get("/api/v1/agents", Some(&boss)).await;
    assert_eq!(status, 200);
    let alice_id = agents[0]["id"].as_str().expect("id").to_owned();
    assert_eq!(agents[0]["video_enabled"], false);

    let path = format!("/api/v1/agents/{alice_id}/video-service");
    let (status, _) = server
        .put(&path, Some(&rival), Some(json!({"enabled": true})))
        .await;
    assert_eq!(
        status, 404,
        "another enterprise's agent does not exist for this admin"
    );
    let (status, body) = server
        .put(&path, Some(&boss), Some(json!({"enabled": "yes"})))
        .await;
    assert_eq!(status, 422, "{body}");
    let (status, alice) = server
        .put(&path, Some(&boss), Some(json!({"enabled": true})))
        .await;
    assert_eq!(status, 200);
    assert_eq!(alice["video_enabled"], true);
    let (_, rival_agents) = server.get("/api/v1/agents", Some(&rival)).await;
    assert_eq!(rival_agents, json!([]), "tenancy: no foreign agents listed");
}

#[tokio::test]
async fn agents_set_their_presence() {
    let server = spawn_app().await;
    server.enterprise("4001").await;
    server
        .user("4001", "alice", UserRole::Agent, PASSWORD)
        .await;
    let alice = server.login("alice", PASSWORD).await;
    let (status, me) = server
        .put(
            "/api/v1/me/presence",
            Some(&alice),
            Some(json!({"status": "online", "accepting": true})),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(
        (me["status"].as_str(), me["accepting"].as_bool()),
        (Some("online"), Some(true))
    );
    let (status, body) = server
        .put(
            "/api/v1/me/presence",
            Some(&alice),
            Some(json!({"status": "away", "accepting": true})),
        )
        .await;
    assert_eq!(status, 422, "{body}");
    let (status, _) = server
        .put(
            "/api/v1/me/presence",
            Some(&alice),
            Some(json!({"status": "dancing", "accepting": false})),
        )
        .await;
    assert_eq!(status, 422);
}

/// Every endpoint × every kind of caller: anonymous, a customer (room token), an agent,
/// an admin, and an admin of another enterprise.
#[tokio::test]
async fn authorization_matrix() {
    let server = spawn_app().await;
    for e in ["4001", "4002"] {
        server.enterprise(e).await;
    }
    server
        .user("4001", "alice", UserRole::Agent, PASSWORD)
        .await;
    server.user("4001", "boss", UserRole::Admin, PASSWORD).await;
    server
        .user("4002", "rival", UserRole::Admin, PASSWORD)
        .await;
    server.user("4001", "bob", UserRole::Agent, PASSWORD).await;
    let agent = server.login("alice", PASSWORD).await;
    let admin = server.login("boss", PASSWORD).await;
    let rival = server.login("rival", PASSWORD).await;
    let customer = server.token("call", "c1", kefu_signaling::rooms::token::Side::Customer);
    let (_, agents) = server.get("/api/v1/agents", Some(&admin)).await;
    let alice_id = agents[0]["id"].as_str().expect("id").to_owned();
    let bob_id = agents[1]["id"].as_str().expect("id").to_owned();
    let remove_bob = format!("/api/v1/agents/{bob_id}");
    let grant = format!("/api/v1/agents/{alice_id}/video-service");
    let face_reference = format!("/api/v1/users/{alice_id}/face-reference");
    let clear_lock = format!("/api/v1/users/{alice_id}/verification-lock/clear");
    // An incident of enterprise 4001, without evidence pictures.
    let enterprise = server
        .store
        .enterprise_by_main_account("4001")
        .await
        .expect("db")
        .expect("enterprise");
    let incident_id = uuid::Uuid::new_v4().to_string();
    server
        .store
        .insert_incident(&kefu_signaling::moderation::Incident {
            id: incident_id.clone(),
            enterprise_id: enterprise.id,
            call_id: "call-1".into(),
            agent_id: Some(kefu_signaling::accounts::UserId(alice_id.clone())),
            agent_name: None,
            party: "customer".into(),
            action: "blurred".into(),
            scores: vec![0.9, 0.95],
            evidence_key: None,
            mosaic_key: None,
            created_at: 1,
            review: "pending".into(),
            review_note: None,
            reviewed_by: None,
            reviewed_at: None,
        })
        .await
        .expect("incident");
    let mosaic = format!("/api/v1/moderation/incidents/{incident_id}/mosaic");
    let reveal = format!("/api/v1/moderation/incidents/{incident_id}/reveal");
    let review = format!("/api/v1/moderation/incidents/{incident_id}/review");
    let moderation_settings = json!({
        "enabled": true, "threshold": 0.8, "positives_to_blur": 2, "positives_to_end": 3,
        "warmup_interval_ms": 1000, "warmup_ms": 10000, "steady_interval_ms": 2000
    });

    let callers: [(&str, Option<&str>); 5] = [
        ("anonymous", None),
        ("customer", Some(&customer)),
        ("agent", Some(&agent)),
        ("admin", Some(&admin)),
        ("other admin", Some(&rival)),
    ];
    // Expected status per caller, in the order above.
    let matrix: Vec<(Method, &str, Option<Value>, [u16; 5])> = vec![
        (Method::GET, "/api/v1/me", None, [401, 401, 200, 200, 200]),
        (
            Method::GET,
            "/api/v1/me/queue",
            None,
            [401, 401, 200, 403, 403],
        ),
        (
            Method::GET,
            "/api/v1/me/beauty",
            None,
            [401, 401, 200, 403, 403],
        ),
        (
            Method::PUT,
            "/api/v1/me/beauty",
            Some(json!({"preset": "fair"})),
            [401, 401, 200, 403, 403],
        ),
        (
            Method::POST,
            "/api/v1/me/beauty/reset",
            None,
            [401, 401, 200, 403, 403],
        ),
        (
            Method::POST,
            "/api/v1/me/beauty/preview",
            Some(json!({"preset": "natural"})),
            [401, 401, 201, 403, 403],
        ),
        (
            Method::PUT,
            "/api/v1/me/beauty/preview",
            Some(json!({"preset": "fair"})),
            [401, 401, 204, 403, 403],
        ),
        (
            Method::DELETE,
            "/api/v1/me/beauty/preview",
            None,
            [401, 401, 204, 403, 403],
        ),
        (
            Method::POST,
            "/api/v1/calls/unknown/accept",
            None,
            [401, 401, 404, 403, 403],
        ),
        (
            Method::GET,
            "/api/v1/service/requests/unknown",
            None,
            [401, 404, 401, 401, 401],
        ),
        (
            Method::PUT,
            "/api/v1/me/presence",
            Some(json!({"status": "online", "accepting": false})),
            [401, 401, 200, 403, 403],
        ),
        (
            Method::GET,
            "/api/v1/me/verification-gate",
            None,
            [401, 401, 200, 403, 403],
        ),
        (
            Method::GET,
            "/api/v1/agents",
            None,
            [401, 401, 403, 200, 200],
        ),
        (
            Method::PUT,
            &grant,
            Some(json!({"enabled": true})),
            [401, 401, 403, 200, 404],
        ),
        // The agent now has the service but no verification: the gate answers 403.
        (
            Method::POST,
            "/api/v1/calls",
            Some(json!({"kind": "video"})),
            [401, 401, 403, 403, 403],
        ),
        (
            Method::GET,
            "/api/v1/calls/unknown",
            None,
            [401, 401, 404, 404, 404],
        ),
        (
            Method::GET,
            "/api/v1/verifications",
            None,
            [401, 401, 403, 200, 200],
        ),
        (
            Method::GET,
            "/api/v1/verifications.csv",
            None,
            [401, 401, 403, 200, 200],
        ),
        (
            Method::GET,
            "/api/v1/recordings",
            None,
            [401, 401, 200, 200, 200],
        ),
        (
            Method::GET,
            "/api/v1/recordings/unknown",
            None,
            [401, 401, 404, 404, 404],
        ),
        (
            Method::POST,
            "/api/v1/recordings/unknown/play",
            None,
            [401, 401, 404, 404, 404],
        ),
        (
            Method::POST,
            "/api/v1/recordings/unknown/download",
            None,
            [401, 401, 404, 404, 404],
        ),
        (
            Method::POST,
            "/api/v1/recordings/unknown/retry",
            None,
            [401, 401, 403, 404, 404],
        ),
        (
            Method::GET,
            "/api/v1/audit",
            None,
            [401, 401, 403, 200, 200],
        ),
        // Public endpoints answer everyone alike.
        (
            Method::GET,
            "/api/v1/service/4001",
            None,
            [200, 200, 200, 200, 200],
        ),
        (
            Method::POST,
            "/api/v1/service/0000/requests",
            Some(json!({"display_name": "王五", "consent": true, "kind": "voice"})),
            [404, 404, 404, 404, 404],
        ),
        (
            Method::GET,
            "/api/v1/invites/unknown",
            None,
            [404, 404, 404, 404, 404],
        ),
        (
            Method::POST,
            "/api/v1/invites/unknown/accept",
            Some(json!({"display_name": "王五", "consent": true})),
            [404, 404, 404, 404, 404],
        ),
        (
            Method::POST,
            "/api/v1/auth/login",
            Some(json!({"login": "alice", "password": PASSWORD})),
            [200, 200, 200, 200, 200],
        ),
        // A customer's own request only, with its room token.
        (
            Method::POST,
            "/api/v1/service/requests/unknown/cancel",
            None,
            [401, 404, 401, 401, 401],
        ),
        // The calling agent's own calls only.
        (
            Method::POST,
            "/api/v1/calls/unknown/cancel",
            None,
            [401, 401, 404, 403, 403],
        ),
        (
            Method::GET,
            "/api/v1/calls/unknown/room-token",
            None,
            [401, 401, 404, 403, 403],
        ),
        (
            Method::GET,
            "/api/v1/calls/unknown/invite.svg",
            None,
            [401, 401, 404, 403, 403],
        ),
        // Face verification: the agent's own attempts (alice has no reference yet).
        (
            Method::POST,
            "/api/v1/me/verification/attempts",
            None,
            [401, 401, 409, 403, 403],
        ),
        (
            Method::GET,
            "/api/v1/me/verification/attempts/unknown",
            None,
            [401, 401, 404, 403, 403],
        ),
        (
            Method::POST,
            "/api/v1/me/verification/attempts/unknown/frames",
            None,
            [401, 401, 404, 403, 403],
        ),
        (
            Method::POST,
            "/api/v1/me/verification/attempts/unknown/phone-link",
            None,
            [401, 401, 404, 403, 403],
        ),
        // The phone link is its own credential; a session that is not its agent's is
        // told nothing, a bearer that is no session is refused.
        (
            Method::POST,
            "/api/v1/phone-verification/unknown",
            None,
            [404, 401, 404, 404, 404],
        ),
        (
            Method::POST,
            "/api/v1/phone-verification/frames",
            None,
            [401, 401, 401, 401, 401],
        ),
        // Enrolment and locks: the agent's own enterprise's admins only.
        (
            Method::GET,
            &face_reference,
            None,
            [401, 401, 403, 200, 404],
        ),
        (
            Method::PUT,
            &face_reference,
            Some(json!({"photos": []})),
            [401, 401, 403, 422, 404],
        ),
        (Method::POST, &clear_lock, None, [401, 401, 403, 409, 404]),
        (
            Method::GET,
            "/api/v1/enterprise/verification-settings",
            None,
            [401, 401, 403, 200, 200],
        ),
        (
            Method::PUT,
            "/api/v1/enterprise/verification-settings",
            Some(json!({"keep_enrollment_photos": false})),
            [401, 401, 403, 200, 200],
        ),
        (
            Method::GET,
            "/api/v1/enterprise/moderation-settings",
            None,
            [401, 401, 403, 200, 200],
        ),
        (
            Method::PUT,
            "/api/v1/enterprise/moderation-settings",
            Some(moderation_settings),
            [401, 401, 403, 200, 200],
        ),
        (
            Method::GET,
            "/api/v1/moderation/incidents",
            None,
            [401, 401, 403, 200, 200],
        ),
        // No evidence was kept for this one: 404 for its own admin too.
        (Method::GET, &mosaic, None, [401, 401, 403, 404, 404]),
        (Method::POST, &reveal, None, [401, 401, 403, 404, 404]),
        (
            Method::POST,
            &review,
            Some(json!({"decision": "confirmed"})),
            [401, 401, 403, 200, 404],
        ),
        (
            Method::GET,
            "/api/v1/enterprise/retention-settings",
            None,
            [401, 401, 403, 200, 200],
        ),
        (
            Method::PUT,
            "/api/v1/enterprise/retention-settings",
            Some(json!({"recordings_days": 180})),
            [401, 401, 403, 200, 200],
        ),
        // The other enterprise's admin asks after the removal: 404 either way (the
        // object-level tests ask before it too).
        (Method::DELETE, &remove_bob, None, [401, 401, 403, 204, 404]),
        (
            Method::POST,
            "/api/v1/auth/logout",
            None,
            [401, 401, 204, 204, 204],
        ),
    ];

    // Every operation of the served document is exercised, so a new route cannot
    // escape this matrix: the test fails on one it does not know.
    let (_, doc) = server.get("/api/openapi.json", None).await;
    let documented = documented_operations(&doc);
    let mut exercised = std::collections::BTreeSet::new();
    for (method, path, _, _) in &matrix {
        let template = template_of(&documented, method.as_str(), path)
            .unwrap_or_else(|| panic!("{method} {path} is not in the OpenAPI document"));
        exercised.insert((method.as_str().to_owned(), template));
    }
    let missing: Vec<_> = documented.difference(&exercised).collect();
    assert!(missing.is_empty(), "operations not exercised: {missing:?}");
    assert_eq!(exercised.len(), documented.len());
    assert!(documented.len() >= 51, "{} operations", documented.len());

    for (method, path, body, expected) in matrix {
        for ((who, token), want) in callers.iter().zip(expected) {
            let (status, _) =
                call(&server.base_url, method.clone(), path, *token, body.clone()).await;
            assert_eq!(status.as_u16(), want, "{method} {path} as {who}");
        }
    }
}

#[tokio::test]
async fn beauty_settings_open_on_natural_keep_the_last_confirmed_and_reset() {
    let server = spawn_app().await;
    server.enterprise("4001").await;
    server
        .user("4001", "alice", UserRole::Agent, PASSWORD)
        .await;
    let alice = server.login("alice", PASSWORD).await;

    let (status, first) = server.get("/api/v1/me/beauty", Some(&alice)).await;
    assert_eq!(status, 200);
    assert_eq!(
        first["preset"], "natural",
        "the dialog opens on natural the first time"
    );

    let custom = json!({"preset": "smooth", "params": {"smoothing": 0.9, "whitening": 0.2, "ruddiness": 0.1, "sharpness": 0.1}});
    let (status, saved) = server
        .put("/api/v1/me/beauty", Some(&alice), Some(custom.clone()))
        .await;
    assert_eq!(status, 200);
    let (_, reopened) = server.get("/api/v1/me/beauty", Some(&alice)).await;
    assert_eq!(
        reopened, saved,
        "the dialog reopens on the last confirmed settings"
    );
    assert_eq!(reopened["params"]["smoothing"], 0.9);

    let (status, body) = server
        .put(
            "/api/v1/me/beauty",
            Some(&alice),
            Some(json!({"preset": "glow"})),
        )
        .await;
    assert_eq!(status, 422);
    assert!(body["fields"]["preset"].is_string(), "{body}");
    let bad = json!({"preset": "smooth", "params": {"smoothing": 1.5, "whitening": 0.2, "ruddiness": 0.1, "sharpness": 0.1}});
    let (status, body) = server
        .put("/api/v1/me/beauty", Some(&alice), Some(bad))
        .await;
    assert_eq!(status, 422);
    assert!(
        body["fields"]["smoothing"].is_string(),
        "out of range is an error, not clamped: {body}"
    );
    let (_, unchanged) = server.get("/api/v1/me/beauty", Some(&alice)).await;
    assert_eq!(unchanged, saved, "refused input changes nothing");

    let (status, reset) = server
        .post("/api/v1/me/beauty/reset", Some(&alice), None)
        .await;
    assert_eq!(status, 200);
    assert_eq!(reset["preset"], "natural");
    let (_, after) = server.get("/api/v1/me/beauty", Some(&alice)).await;
    assert_eq!(after["preset"], "natural");
}

#[tokio::test]
async fn the_beauty_preview_opens_tries_settings_without_saving_and_closes() {
    let server = spawn_app().await;
    server.enterprise("4001").await;
    server
        .user("4001", "alice", UserRole::Agent, PASSWORD)
        .await;
    let alice = server.login("alice", PASSWORD).await;
    let smooth = json!({"preset": "smooth"});
    let (status, _) = server
        .put(
            "/api/v1/me/beauty/preview",
            Some(&alice),
            Some(smooth.clone()),
        )
        .await;
    assert_eq!(status, 404, "nothing to try settings on before it opens");

    let (status, opened) = server
        .post(
            "/api/v1/me/beauty/preview",
            Some(&alice),
            Some(json!({"preset": "natural"})),
        )
        .await;
    assert_eq!(status, 201, "{opened}");
    let room = opened["room"].as_str().expect("room");
    assert!(room.starts_with("preview-"), "{room}");
    assert!(opened["room_token"].as_str().is_some_and(|t| t.len() > 20));

    let bad = json!({"preset": "smooth", "params": {"smoothing": 1.5, "whitening": 0.2, "ruddiness": 0.1, "sharpness": 0.1}});
    let (status, body) = server
        .put("/api/v1/me/beauty/preview", Some(&alice), Some(bad))
        .await;
    assert_eq!(status, 422, "{body}");
    assert!(body["fields"]["smoothing"].is_string(), "{body}");
    let (status, body) = server
        .put(
            "/api/v1/me/beauty/preview",
            Some(&alice),
            Some(json!({"preset": "glow"})),
        )
        .await;
    assert_eq!(status, 422, "{body}");
    let (status, _) = server
        .put("/api/v1/me/beauty/preview", Some(&alice), Some(smooth))
        .await;
    assert_eq!(status, 204);
    let (_, saved) = server.get("/api/v1/me/beauty", Some(&alice)).await;
    assert_eq!(saved["preset"], "natural", "trying is not confirming");

    // A second preview replaces the first.
    let (_, again) = server
        .post(
            "/api/v1/me/beauty/preview",
            Some(&alice),
            Some(json!({"preset": "none"})),
        )
        .await;
    assert_ne!(again["room"], opened["room"]);

    let (status, _) = server
        .delete("/api/v1/me/beauty/preview", Some(&alice))
        .await;
    assert_eq!(status, 204);
    let (status, _) = server
        .put(
            "/api/v1/me/beauty/preview",
            Some(&alice),
            Some(json!({"preset": "fair"})),
        )
        .await;
    assert_eq!(status, 404, "closed");
    let (status, _) = server
        .delete("/api/v1/me/beauty/preview", Some(&alice))
        .await;
    assert_eq!(status, 204, "closing twice is fine");
}

/// (METHOD, path template) of every operation in an OpenAPI document.
fn documented_operations(doc: &Value) -> std::collections::BTreeSet<(String, String)> {
    let mut ops = std::collections::BTreeSet::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for method in item.as_object().expect("path item").keys() {
            if ["get", "put", "post", "delete", "patch"].contains(&method.as_str()) {
                ops.insert((method.to_uppercase(), path.clone()));
            }
        }
    }
    ops
}

/// The documented template a concrete path was made from (`{x}` matches one segment;
/// the template with the most literal segments wins).
fn template_of(
    documented: &std::collections::BTreeSet<(String, String)>,
    method: &str,
    path: &str,
) -> Option<String> {
    let segments: Vec<&str> = path.split('/').collect();
    documented
        .iter()
        .filter(|(m, _)| m == method)
        .filter_map(|(_, template)| {
            let parts: Vec<&str> = template.split('/').collect();
            if parts.len() != segments.len() {
                return None;
            }
            let mut literal = 0;
            for (t, s) in parts.iter().zip(&segments) {
                if t.starts_with('{') && t.ends_with('}') {
                    continue;
                }
                if t != s {
                    return None;
                }
                literal += 1;
            }
            Some((literal, template.clone()))
        })
        .max()
        .map(|(_, template)| template)
}
