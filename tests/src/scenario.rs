//! Typed steps the API suites share: an enterprise with an agent, a passed face
//! check, a connected call, a call's current view.

use std::time::Duration;

use kefu_signaling::accounts::UserRole;
use kefu_signaling::clock::now_ms;
use kefu_signaling::verification::{CheckOutcome, record_verification};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::{RtcClient, TestServer};

/// The password every scenario user gets.
pub const PASSWORD: &str = "correct horse battery";

/// The main account of the scenario enterprise.
pub const ENTERPRISE: &str = "4001";

impl TestServer {
    /// `GET path` with an optional bearer.
    pub async fn get(&self, path: &str, token: Option<&str>) -> (StatusCode, Value) {
        crate::http::call(&self.base_url, Method::GET, path, token, None).await
    }

    /// `POST path` with an optional bearer and JSON body.
    pub async fn post(
        &self,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        crate::http::call(&self.base_url, Method::POST, path, token, body).await
    }

    /// `PUT path` with an optional bearer and JSON body.
    pub async fn put(
        &self,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        crate::http::call(&self.base_url, Method::PUT, path, token, body).await
    }

    /// `DELETE path` with an optional bearer.
    pub async fn delete(&self, path: &str, token: Option<&str>) -> (StatusCode, Value) {
        crate::http::call(&self.base_url, Method::DELETE, path, token, None).await
    }

    /// `POST /api/v1/auth/login` as the scenario's agent, whatever the answer.
    pub async fn try_login(&self, login: &str) -> (StatusCode, Value) {
        self.post(
            "/api/v1/auth/login",
            None,
            Some(json!({"login": login, "password": PASSWORD})),
        )
        .await
    }

    /// The call as `token`'s holder sees it (`GET /api/v1/calls/{id}`).
    pub async fn call_view(&self, id: &str, token: &str) -> Value {
        let (status, view) = self.get(&format!("/api/v1/calls/{id}"), Some(token)).await;
        assert_eq!(status, 200, "GET call {id}: {view}");
        view
    }

    /// Waits until the call is in `state`; returns its view.
    pub async fn wait_for_call_state(
        &self,
        id: &str,
        token: &str,
        state: &str,
        timeout: Duration,
    ) -> Value {
        crate::wait_until(&format!("call {id} to be {state}"), timeout, || async {
            let view = self.call_view(id, token).await;
            (view["state"] == state).then_some(view)
        })
        .await
    }

    /// The recordings of one call, as `token`'s holder sees them.
    pub async fn recordings_of(&self, call: &str, token: &str) -> Value {
        let (status, list) = self
            .get(&format!("/api/v1/recordings?call_id={call}"), Some(token))
            .await;
        assert_eq!(status, 200, "{list}");
        list
    }
}

/// Records a face check of `login` straight into the store (the engine's interface).
pub async fn verify(server: &TestServer, login: &str, passed: bool) {
    let (user, _) = server
        .store
        .user_by_login(login)
        .await
        .expect("get")
        .expect("user");
    record_verification(&server.store, &user, CheckOutcome { passed }, now_ms())
        .await
        .expect("record");
}

/// An enterprise with an admin `boss` and an agent `alice` who has the video service;
/// returns their bearer tokens (alice's, boss's).
pub async fn enterprise_with_agent(server: &TestServer) -> (String, String) {
    server.enterprise(ENTERPRISE).await;
    server
        .user(ENTERPRISE, "boss", UserRole::Admin, PASSWORD)
        .await;
    let boss = server.login("boss", PASSWORD).await;
    // The webrtc-rs clients send made-up VP8 that no decoder accepts; the beauty
    // pipeline would rightly drop it, so these call tests forward video as is.
    let alice = another_agent(server, &boss, "alice", "none").await;
    (alice, boss)
}

/// One more agent `login` of the scenario enterprise, with the video service (granted
/// by the admin `boss`) and the beauty `preset`; returns its bearer token. An agent
/// holds a couple of calls at most, so many concurrent calls need many agents.
pub async fn another_agent(server: &TestServer, boss: &str, login: &str, preset: &str) -> String {
    server
        .user(ENTERPRISE, login, UserRole::Agent, PASSWORD)
        .await;
    let (user, _) = server
        .store
        .user_by_login(login)
        .await
        .expect("get")
        .expect("user");
    let (status, _) = server
        .put(
            &format!("/api/v1/agents/{}/video-service", user.id),
            Some(boss),
            Some(json!({"enabled": true})),
        )
        .await;
    assert_eq!(status, 200);
    let token = server.login(login, PASSWORD).await;
    let (status, body) = server
        .put(
            "/api/v1/me/beauty",
            Some(&token),
            Some(json!({"preset": preset})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    token
}

/// Puts `logins` into a new reception group 售后 of the scenario enterprise and turns
/// each agent (by its bearer token) online and accepting.
pub async fn reception_group(server: &TestServer, agents: &[(&str, &str)]) {
    kefu_signaling::accounts::admin::create_group(&server.store, ENTERPRISE, "售后", 1)
        .await
        .expect("group");
    for (login, token) in agents {
        kefu_signaling::accounts::admin::add_to_group(&server.store, login, "售后")
            .await
            .expect("member");
        let (status, _) = server
            .put(
                "/api/v1/me/presence",
                Some(token),
                Some(json!({"status": "online", "accepting": true})),
            )
            .await;
        assert_eq!(status, 200, "{login} goes online");
    }
}

/// A customer's request on the service page; returns (call id, its room token).
pub async fn service_request(server: &TestServer, kind: &str) -> (String, String) {
    let (status, view) = server
        .post(
            &format!("/api/v1/service/{ENTERPRISE}/requests"),
            None,
            Some(json!({"display_name": "王五", "consent": true, "kind": kind})),
        )
        .await;
    assert_eq!(status, 201, "{view}");
    (
        view["call_id"].as_str().expect("id").to_owned(),
        view["room_token"].as_str().expect("token").to_owned(),
    )
}

/// `agent` calls a customer out: (call id, invite code).
pub async fn invite(server: &TestServer, agent: &str, kind: &str) -> (String, String) {
    let (status, created) = server
        .post("/api/v1/calls", Some(agent), Some(json!({"kind": kind})))
        .await;
    assert_eq!(status, 201, "{created}");
    let id = created["id"].as_str().expect("id").to_owned();
    let code = created["invite_url"]
        .as_str()
        .expect("invite")
        .rsplit('/')
        .next()
        .expect("code")
        .to_owned();
    (id, code)
}

/// The customer consents to the invite `code` (on `server`, which may be another node
/// than the one that made it); returns the customer's ticket (its room token).
pub async fn accept_invite(server: &TestServer, code: &str) -> Value {
    let (status, ticket) = server
        .post(
            &format!("/api/v1/invites/{code}/accept"),
            None,
            Some(json!({"display_name": "张三", "consent": true})),
        )
        .await;
    assert_eq!(status, 200, "{ticket}");
    ticket
}

/// An invited call of `agent` that the customer accepted (state `connecting`):
/// (call id, the agent's room token, the customer's room token).
pub async fn accepted_invite(
    server: &TestServer,
    agent: &str,
    kind: &str,
) -> (String, String, String) {
    let (id, code) = invite(server, agent, kind).await;
    let ticket = accept_invite(server, &code).await;
    let (_, agent_ticket) = server
        .get(&format!("/api/v1/calls/{id}/room-token"), Some(agent))
        .await;
    (
        id,
        agent_ticket["room_token"]
            .as_str()
            .expect("token")
            .to_owned(),
        ticket["room_token"].as_str().expect("token").to_owned(),
    )
}

/// Connects an invited video call of `agent` with two webrtc-rs clients.
pub async fn connected_call(server: &TestServer, agent: &str) -> (String, RtcClient, RtcClient) {
    let (id, agent_token, customer_token) = accepted_invite(server, agent, "video").await;
    let a = RtcClient::join_with_token(server, &agent_token, "agent").await;
    let c = RtcClient::join_with_token(server, &customer_token, "customer").await;
    c.wait_for_more(20, 20, Duration::from_secs(15)).await;
    (id, a, c)
}
