//! Calls over the API: the verification gate, invites, visibility, and the
//! verification records of the operations dashboard.

use kefu_signaling::accounts::UserRole;
use kefu_signaling::clock::now_ms;
use kefu_tests::{TestServer, spawn_app};
use serde_json::json;

use kefu_tests::scenario::{PASSWORD, connected_call, enterprise_with_agent, verify};

#[tokio::test]
async fn the_gate_refuses_without_verification_allows_three_then_refuses_the_fourth() {
    let server = spawn_app().await;
    let (alice, _) = enterprise_with_agent(&server).await;

    let (_, gate) = server
        .get("/api/v1/me/verification-gate", Some(&alice))
        .await;
    assert_eq!(gate["verification_required"], true);
    let (status, body) = server
        .post(
            "/api/v1/calls",
            Some(&alice),
            Some(json!({"kind": "video"})),
        )
        .await;
    assert_eq!(status, 403);
    assert_eq!(body["error"], "verification_required");
    assert_eq!(body["detail"]["reason"], "first_call_since_login");

    verify(&server, "alice", true).await;
    let (_, gate) = server
        .get("/api/v1/me/verification-gate", Some(&alice))
        .await;
    assert_eq!(gate["verification_required"], false);
    for n in 1..=3 {
        let (status, created) = server
            .post(
                "/api/v1/calls",
                Some(&alice),
                Some(json!({"kind": "video"})),
            )
            .await;
        assert_eq!(status, 201, "call {n}: {created}");
        assert_eq!(created["state"], "inviting");
        let id = created["id"].as_str().expect("id");
        let (status, _) = server
            .post(&format!("/api/v1/calls/{id}/cancel"), Some(&alice), None)
            .await;
        assert_eq!(status, 200);
    }
    let (status, body) = server
        .post(
            "/api/v1/calls",
            Some(&alice),
            Some(json!({"kind": "video"})),
        )
        .await;
    assert_eq!(status, 403, "the 4th outgoing call needs a new check");
    assert_eq!(body["detail"]["reason"], "period_used");
}

#[tokio::test]
async fn a_call_has_an_invite_link_and_qr_code_for_its_agent_only() {
    let server = spawn_app().await;
    let (alice, boss) = enterprise_with_agent(&server).await;
    server.user("4001", "bob", UserRole::Agent, PASSWORD).await;
    let bob = server.login("bob", PASSWORD).await;
    server.enterprise("4002").await;
    server
        .user("4002", "rival", UserRole::Admin, PASSWORD)
        .await;
    let rival = server.login("rival", PASSWORD).await;
    verify(&server, "alice", true).await;
    let base = &server.base_url;

    let (status, created) = server
        .post(
            "/api/v1/calls",
            Some(&alice),
            Some(json!({"kind": "voice"})),
        )
        .await;
    assert_eq!(status, 201);
    assert_eq!(created["kind"], "voice");
    let invite = created["invite_url"].as_str().expect("invite url");
    assert!(invite.starts_with(&format!("{base}/invite/")), "{invite}");
    let id = created["id"].as_str().expect("id");

    let res = reqwest::Client::new()
        .get(format!("{base}/api/v1/calls/{id}/invite.svg"))
        .bearer_auth(&alice)
        .send()
        .await
        .expect("qr");
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["content-type"], "image/svg+xml");
    assert!(res.text().await.expect("svg").contains("<svg"));

    let path = format!("/api/v1/calls/{id}");
    let (status, seen) = server.get(&path, Some(&boss)).await;
    assert_eq!(status, 200, "the enterprise's admin sees it");
    assert!(
        seen.get("invite_url").is_none(),
        "but not the invite secret"
    );
    for (who, token) in [
        ("another agent", &bob),
        ("another enterprise's admin", &rival),
    ] {
        let (status, _) = server.get(&path, Some(token)).await;
        assert_eq!(status, 404, "{who}");
        let (status, _) = server
            .post(&format!("{path}/cancel"), Some(token), None)
            .await;
        assert!(status == 404 || status == 403, "{who}: {status}");
    }
    let (status, _) = server.get("/api/v1/calls/no-such-call", Some(&alice)).await;
    assert_eq!(status, 404);
    let (status, body) = server
        .post(
            "/api/v1/calls",
            Some(&alice),
            Some(json!({"kind": "hologram"})),
        )
        .await;
    assert_eq!(status, 422, "{body}");

    let (status, cancelled) = server
        .post(&format!("{path}/cancel"), Some(&alice), None)
        .await;
    assert_eq!(status, 200);
    assert_eq!(cancelled["state"], "cancelled");
    let (status, body) = server
        .post(&format!("{path}/cancel"), Some(&alice), None)
        .await;
    assert_eq!(status, 409, "already final: {body}");
}

#[tokio::test]
async fn agents_without_the_video_service_cannot_call() {
    let server = spawn_app().await;
    server.enterprise("4001").await;
    server
        .user("4001", "carol", UserRole::Agent, PASSWORD)
        .await;
    verify(&server, "carol", true).await;
    let carol = server.login("carol", PASSWORD).await;
    let (status, body) = server
        .post(
            "/api/v1/calls",
            Some(&carol),
            Some(json!({"kind": "video"})),
        )
        .await;
    assert_eq!(status, 403);
    assert_eq!(body["error"], "video_service_disabled");
}

#[tokio::test]
async fn the_dashboard_lists_and_exports_verifications_with_masked_id_numbers() {
    let server = spawn_app().await;
    let (alice, boss) = enterprise_with_agent(&server).await;
    verify(&server, "alice", false).await;
    verify(&server, "alice", true).await;
    let base = &server.base_url;

    let (status, rows) = server.get("/api/v1/verifications", Some(&boss)).await;
    assert_eq!(status, 200);
    let rows = rows.as_array().expect("array");
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[0]["passed"], true, "newest first");
    assert_eq!(rows[0]["main_account"], "4001");
    assert_eq!(rows[0]["agent_name"], "alice 测试");
    assert_eq!(rows[0]["id_number_masked"], "110***********1234");
    let (_, failed) = server
        .get("/api/v1/verifications?result=failed", Some(&boss))
        .await;
    assert_eq!(failed.as_array().map(Vec::len), Some(1));
    let (status, _) = server
        .get("/api/v1/verifications?result=maybe", Some(&boss))
        .await;
    assert_eq!(status, 422);
    let (status, _) = server
        .get("/api/v1/verifications?from=10&to=5", Some(&boss))
        .await;
    assert_eq!(status, 422);

    let res = reqwest::Client::new()
        .get(format!("{base}/api/v1/verifications.csv"))
        .bearer_auth(&boss)
        .send()
        .await
        .expect("csv");
    assert_eq!(res.status(), 200);
    let csv = res.text().await.expect("body");
    assert_eq!(csv.lines().count(), 3, "{csv}");
    assert!(csv.contains("110***********1234"));
    assert!(
        !csv.contains("110101199003071234"),
        "never the clear ID number"
    );

    let (status, _) = server.get("/api/v1/verifications", Some(&alice)).await;
    assert_eq!(status, 403, "agents do not see the dashboard");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invited_customer_joins_and_the_call_connects_then_ends() {
    let server = spawn_app().await;
    let (alice, boss) = enterprise_with_agent(&server).await;
    verify(&server, "alice", true).await;
    let (_, created) = server
        .post(
            "/api/v1/calls",
            Some(&alice),
            Some(json!({"kind": "video"})),
        )
        .await;
    let id = created["id"].as_str().expect("id").to_owned();
    let code = created["invite_url"]
        .as_str()
        .expect("invite")
        .rsplit('/')
        .next()
        .expect("code")
        .to_owned();

    let (status, invite) = server.get(&format!("/api/v1/invites/{code}"), None).await;
    assert_eq!(status, 200);
    assert_eq!(invite["kind"], "video");
    let (status, body) = server
        .post(
            &format!("/api/v1/invites/{code}/accept"),
            None,
            Some(json!({"display_name": "张三", "consent": false})),
        )
        .await;
    assert_eq!(status, 422, "no consent, no call: {body}");
    let (status, _) = server.get("/api/v1/invites/not-a-code", None).await;
    assert_eq!(status, 404);

    let (status, ticket) = server
        .post(
            &format!("/api/v1/invites/{code}/accept"),
            None,
            Some(json!({"display_name": "张三", "consent": true})),
        )
        .await;
    assert_eq!(status, 200, "{ticket}");
    let customer_token = ticket["room_token"].as_str().expect("token").to_owned();
    let (_, agent_ticket) = server
        .get(&format!("/api/v1/calls/{id}/room-token"), Some(&alice))
        .await;
    let agent_token = agent_ticket["room_token"]
        .as_str()
        .expect("token")
        .to_owned();
    let (_, now) = server
        .get(&format!("/api/v1/calls/{id}"), Some(&boss))
        .await;
    assert_eq!(now["state"], "connecting");

    let agent = kefu_tests::RtcClient::join_with_token(&server, &agent_token, "agent").await;
    let customer =
        kefu_tests::RtcClient::join_with_token(&server, &customer_token, "customer").await;
    customer
        .wait_for_more(20, 20, std::time::Duration::from_secs(15))
        .await;
    agent
        .wait_for_more(20, 20, std::time::Duration::from_secs(15))
        .await;
    kefu_tests::wait_until(
        "the call to be connected",
        std::time::Duration::from_secs(5),
        || async {
            let (_, c) = server
                .get(&format!("/api/v1/calls/{id}"), Some(&boss))
                .await;
            (c["state"] == "connected").then_some(())
        },
    )
    .await;

    // Connected: recorded automatically, whatever the agent does.
    let recordings = format!("/api/v1/recordings?call_id={id}");
    let (_, live) = server.get(&recordings, Some(&boss)).await;
    assert_eq!(live[0]["state"], "recording", "{live}");

    customer.hang_up(); // as the page's button: `leave`
    let ended = kefu_tests::wait_until(
        "the call to end",
        std::time::Duration::from_secs(5),
        || async {
            let (_, c) = server
                .get(&format!("/api/v1/calls/{id}"), Some(&boss))
                .await;
            (c["state"] == "ended").then_some(c)
        },
    )
    .await;
    assert_eq!(ended["state_detail"]["by"], "customer");
    assert!(ended["connected_at"].as_i64() <= ended["ended_at"].as_i64());
    let (status, _) = server.get(&format!("/api/v1/invites/{code}"), None).await;
    assert_eq!(status, 404, "a finished call's invite is dead");
    let stored = kefu_tests::wait_until(
        "the recording to be stored",
        std::time::Duration::from_secs(15),
        || async {
            let (_, r) = server.get(&recordings, Some(&boss)).await;
            (r[0]["state"] == "ready").then_some(r)
        },
    )
    .await;
    assert!(stored[0]["duration_ms"].as_i64() > Some(0));
    agent.hang_up();
    // Once everyone left, the finished call's room is gone and its tokens open nothing.
    kefu_tests::wait_until(
        "the call room to close",
        std::time::Duration::from_secs(5),
        || async {
            let mut ws = kefu_tests::SignalingClient::connect(&server.ws_url).await;
            match ws.join(&customer_token).await {
                kefu_proto::signaling::ServerMessage::Error { code, .. } => {
                    (code == kefu_proto::signaling::ErrorCode::UnknownRoom).then_some(())
                }
                _ => None,
            }
        },
    )
    .await;
}

#[tokio::test]
async fn an_unanswered_invite_times_out() {
    let server = spawn_app().await;
    let (alice, _) = enterprise_with_agent(&server).await;
    verify(&server, "alice", true).await;
    // Make the enterprise ring for one second only.
    sqlx_set_ring_timeout(&server, 1).await;
    let (_, created) = server
        .post(
            "/api/v1/calls",
            Some(&alice),
            Some(json!({"kind": "voice"})),
        )
        .await;
    let id = created["id"].as_str().expect("id").to_owned();
    let timed_out = kefu_tests::wait_until(
        "the ring timeout",
        std::time::Duration::from_secs(5),
        || async {
            let (_, c) = server
                .get(&format!("/api/v1/calls/{id}"), Some(&alice))
                .await;
            (c["state"] == "timed_out").then_some(c)
        },
    )
    .await;
    assert!(timed_out["ended_at"].is_i64());
}

async fn sqlx_set_ring_timeout(server: &TestServer, secs: i64) {
    let e = server
        .store
        .enterprise_by_main_account("4001")
        .await
        .expect("get")
        .expect("enterprise");
    server
        .store
        .set_ring_timeout(&e.id, secs as u32)
        .await
        .expect("update");
}

#[tokio::test]
async fn service_requests_queue_and_only_their_customer_sees_them() {
    let server = spawn_app().await;
    let (alice, _) = enterprise_with_agent(&server).await;
    kefu_signaling::accounts::admin::create_group(&server.store, "4001", "售后", now_ms())
        .await
        .expect("group");
    kefu_signaling::accounts::admin::add_to_group(&server.store, "alice", "售后")
        .await
        .expect("member");

    let ask = json!({"display_name": "张三", "consent": true, "kind": "video"});
    let (status, first) = server
        .post("/api/v1/service/4001/requests", None, Some(ask.clone()))
        .await;
    assert_eq!(status, 201, "{first}");
    assert_eq!(
        (first["state"].as_str(), first["position"].as_u64()),
        (Some("requested"), Some(1))
    );
    let (_, second) = server
        .post("/api/v1/service/4001/requests", None, Some(ask.clone()))
        .await;
    assert_eq!(second["position"], 2);
    let (status, _) = server
        .post("/api/v1/service/9999/requests", None, Some(ask.clone()))
        .await;
    assert_eq!(status, 404);
    let (status, _) = server
        .post(
            "/api/v1/service/4001/requests",
            None,
            Some(json!({"display_name": "x", "consent": false, "kind": "video"})),
        )
        .await;
    assert_eq!(status, 422);

    let first_id = first["call_id"].as_str().expect("id");
    let first_token = first["room_token"].as_str().expect("token");
    let second_token = second["room_token"].as_str().expect("token");
    let path = format!("/api/v1/service/requests/{first_id}");
    let (status, _) = server.get(&path, None).await;
    assert_eq!(status, 401);
    let (status, _) = server.get(&path, Some(second_token)).await;
    assert_eq!(status, 404, "another customer's token sees nothing");
    let (status, _) = server.get(&path, Some(&alice)).await;
    assert_eq!(status, 401, "an agent session is not a customer token");

    let (_, queue) = server.get("/api/v1/me/queue", Some(&alice)).await;
    assert_eq!(queue["waiting"], 2);
    let (status, me) = server
        .put(
            "/api/v1/me/presence",
            Some(&alice),
            Some(json!({"status": "online", "accepting": true})),
        )
        .await;
    assert_eq!(status, 200, "{me}");
    // Capacity 2: both requests now ring at alice, oldest first.
    let (_, queue) = server.get("/api/v1/me/queue", Some(&alice)).await;
    assert_eq!(queue["waiting"], 0);
    assert_eq!(queue["ringing"][0]["id"], first_id);
    let (_, seen) = server.get(&path, Some(first_token)).await;
    assert_eq!(
        (seen["state"].as_str(), seen["position"].as_u64()),
        (Some("ringing"), Some(0))
    );

    let (status, accepted) = server
        .post(
            &format!("/api/v1/calls/{first_id}/accept"),
            Some(&alice),
            None,
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(accepted["state"], "connecting");
    let second_id = second["call_id"].as_str().expect("id");
    let (status, cancelled) = server
        .post(
            &format!("/api/v1/service/requests/{second_id}/cancel"),
            Some(second_token),
            None,
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(cancelled["state"], "cancelled");
}

#[tokio::test]
async fn an_enterprise_with_recording_off_records_nothing() {
    let server = spawn_app().await;
    let (alice, boss) = enterprise_with_agent(&server).await;
    kefu_signaling::accounts::admin::set_recording(&server.store, "4001", false)
        .await
        .expect("recording off");
    verify(&server, "alice", true).await;
    let (id, _agent, customer) = connected_call(&server, &alice).await;
    kefu_tests::wait_until(
        "the call to be connected",
        std::time::Duration::from_secs(5),
        || async {
            let (_, c) = server
                .get(&format!("/api/v1/calls/{id}"), Some(&alice))
                .await;
            (c["state"] == "connected").then_some(())
        },
    )
    .await;
    customer.hang_up();
    let (_, none) = server
        .get(&format!("/api/v1/recordings?call_id={id}"), Some(&boss))
        .await;
    assert_eq!(
        none,
        json!([]),
        "no recording when the enterprise turned it off"
    );
}
