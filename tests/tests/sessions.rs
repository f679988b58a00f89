//! Sessions and tokens against reuse: a sign-in always mints a new session (none a
//! client brings is adopted), a session dies with its logout and with a password
//! reset (API and event channel alike), a finished call's room tokens let nobody back
//! in, and an invite is accepted once.

use std::time::Duration;

use kefu_proto::signaling::ServerMessage;
use kefu_tests::scenario::{PASSWORD, accepted_invite, enterprise_with_agent, invite, verify};
use kefu_tests::signaling::{Closed, EventChannel};
use kefu_tests::{RtcClient, SignalingClient, TestServer, spawn_app};
use serde_json::{Value, json};

/// The first message of an event channel subscribed with `session` on `server`.
async fn subscribe_events(server: &TestServer, session: &str) -> Value {
    EventChannel::subscribe(&server.ws_url, session)
        .await
        .next_where(Duration::from_secs(5), |_| true)
        .await
        .expect("an answer within 5 s")
}

#[tokio::test]
async fn a_sign_in_mints_a_new_session_and_adopts_none_a_client_brings() {
    let server = spawn_app().await;
    let (alice, _boss) = enterprise_with_agent(&server).await;
    // A value an attacker planted (fixation) is no session, before or after a sign-in.
    let planted = "attacker-chosen-session-value-0123456789";
    let (status, _) = server.get("/api/v1/me", Some(planted)).await;
    assert_eq!(status, 401);
    let res = reqwest::Client::new()
        .post(format!("{}/api/v1/auth/login", server.base_url))
        .bearer_auth(planted)
        .json(&json!({"login": "alice", "password": PASSWORD}))
        .send()
        .await
        .expect("login");
    assert_eq!(res.status(), 200);
    let fresh: Value = res.json().await.expect("json");
    let fresh = fresh["token"].as_str().expect("token").to_owned();
    assert_ne!(fresh, planted);
    assert_ne!(fresh, alice, "each sign-in is a session of its own");
    let (status, _) = server.get("/api/v1/me", Some(planted)).await;
    assert_eq!(status, 401, "the planted value did not become a session");
    // Signing out of one session leaves the other.
    let (status, _) = server.post("/api/v1/auth/logout", Some(&fresh), None).await;
    assert_eq!(status, 204);
    let (status, _) = server.get("/api/v1/me", Some(&fresh)).await;
    assert_eq!(status, 401);
    let (status, _) = server.get("/api/v1/me", Some(&alice)).await;
    assert_eq!(status, 200);
    let (status, _) = server.post("/api/v1/auth/logout", Some(&fresh), None).await;
    assert_eq!(status, 401, "a logged-out session cannot log out again");
    assert_eq!(
        subscribe_events(&server, &fresh).await["code"],
        "unauthorized",
        "nor open an event channel"
    );
}

#[tokio::test]
async fn a_password_reset_ends_every_session_of_the_user() {
    let server = spawn_app().await;
    let (alice, _boss) = enterprise_with_agent(&server).await;
    let second = server.login("alice", PASSWORD).await;
    assert_eq!(
        subscribe_events(&server, &alice).await["type"],
        "subscribed"
    );
    kefu_signaling::accounts::admin::set_password(
        &server.store,
        "alice",
        Some("a brand new password 1".into()),
        kefu_signaling::clock::now_ms(),
    )
    .await
    .expect("reset");
    for session in [&alice, &second] {
        let (status, _) = server.get("/api/v1/me", Some(session)).await;
        assert_eq!(status, 401, "a session from before the reset is dead");
        assert_eq!(
            subscribe_events(&server, session).await["code"],
            "unauthorized"
        );
    }
    let (status, _) = server
        .post(
            "/api/v1/auth/login",
            None,
            Some(json!({"login": "alice", "password": PASSWORD})),
        )
        .await;
    assert_eq!(status, 401, "the old password is gone");
    let token = server.login("alice", "a brand new password 1").await;
    let (status, _) = server.get("/api/v1/me", Some(&token)).await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn a_finished_calls_room_tokens_let_nobody_back_in_and_an_invite_is_used_once() {
    let server = spawn_app().await;
    let (alice, _boss) = enterprise_with_agent(&server).await;
    verify(&server, "alice", true).await;
    let (id, agent_token, customer_token) = accepted_invite(&server, &alice, "video").await;
    let agent = RtcClient::join_with_token(&server, &agent_token, "agent").await;
    let customer = RtcClient::join_with_token(&server, &customer_token, "customer").await;
    customer
        .wait_for_more(10, 10, Duration::from_secs(15))
        .await;
    customer.hang_up();
    server
        .wait_for_call_state(&id, &alice, "ended", Duration::from_secs(10))
        .await;
    for token in [&agent_token, &customer_token] {
        let mut ws = SignalingClient::connect(&server.ws_url).await;
        match ws.join(token).await {
            ServerMessage::Error { .. } => {}
            other => panic!("a finished call's token joined: {other:?}"),
        }
        assert!(
            matches!(ws.closed().await, Closed::Code(_) | Closed::Eof),
            "and the connection ends"
        );
    }
    drop((agent, customer));
    let (status, _) = server
        .get(&format!("/api/v1/calls/{id}/room-token"), Some(&alice))
        .await;
    assert!(
        status.is_client_error(),
        "no new room token for a finished call: {status}"
    );

    // An invite opens one call, once: a second accept (a replayed link) is refused.
    let (_, code) = invite(&server, &alice, "video").await;
    let accept = |code: String| {
        let server = &server;
        async move {
            server
                .post(
                    &format!("/api/v1/invites/{code}/accept"),
                    None,
                    Some(json!({"consent": true, "display_name": "访客"})),
                )
                .await
        }
    };
    let (status, first) = accept(code.clone()).await;
    assert_eq!(status, 200, "{first}");
    let (status, again) = accept(code).await;
    assert!(
        status.is_client_error(),
        "replayed invite: {status} {again}"
    );
}
