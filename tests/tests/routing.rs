//! Routing as a call center expects: a customer's request that an agent declines or
//! lets ring out goes back to the front of its queue for the next agent (never the
//! same one again), until the request's overall wait limit ends it as timed out.

use std::time::Duration;

use kefu_signaling::accounts::UserRole;
use kefu_tests::scenario::{
    ENTERPRISE, PASSWORD, enterprise_with_agent, reception_group, service_request,
};
use kefu_tests::{TestServer, spawn_app, wait_until};
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(10);

/// alice and bob, both online and accepting in group 售后; returns (login, token)
/// pairs and the admin's token.
async fn two_agents(server: &TestServer) -> (Vec<(&'static str, String)>, String) {
    let (alice, boss) = enterprise_with_agent(server).await;
    server
        .user(ENTERPRISE, "bob", UserRole::Agent, PASSWORD)
        .await;
    let (_, agents) = server.get("/api/v1/agents", Some(&boss)).await;
    let bob_id = agents
        .as_array()
        .expect("agents")
        .iter()
        .find(|a| a["login"] == "bob")
        .and_then(|a| a["id"].as_str())
        .expect("bob")
        .to_owned();
    let (status, _) = server
        .put(
            &format!("/api/v1/agents/{bob_id}/video-service"),
            Some(&boss),
            Some(json!({"enabled": true})),
        )
        .await;
    assert_eq!(status, 200);
    let bob = server.login("bob", PASSWORD).await;
    reception_group(server, &[("alice", &alice), ("bob", &bob)]).await;
    let agents = vec![("alice", alice), ("bob", bob)];
    (agents, boss)
}

/// Which agent (login) the call rings at now, waiting until it rings.
async fn ringing_at<'a>(
    server: &TestServer,
    agents: &'a [(&'static str, String)],
    call: &str,
) -> &'a (&'static str, String) {
    wait_until("the request to ring an agent", WAIT, || async {
        for agent in agents {
            let (_, queue) = server.get("/api/v1/me/queue", Some(&agent.1)).await;
            if queue["ringing"]
                .as_array()
                .is_some_and(|r| r.iter().any(|c| c["id"] == call))
            {
                return Some(agent);
            }
        }
        None
    })
    .await
}

async fn request_view(server: &TestServer, call: &str, token: &str) -> Value {
    let (status, view) = server
        .get(&format!("/api/v1/service/requests/{call}"), Some(token))
        .await;
    assert_eq!(status, 200, "{view}");
    view
}

#[tokio::test]
async fn a_declined_request_rings_the_next_agent_and_never_the_same_one_again() {
    let server = spawn_app().await;
    let (agents, boss) = two_agents(&server).await;
    let (id, customer) = service_request(&server, "video").await;

    let first = ringing_at(&server, &agents, &id).await;
    let (status, declined) = server
        .post(&format!("/api/v1/calls/{id}/cancel"), Some(&first.1), None)
        .await;
    assert_eq!(status, 200, "{declined}");
    assert_eq!(
        declined["state"], "requested",
        "back in the queue: {declined}"
    );

    let second = ringing_at(&server, &agents, &id).await;
    assert_ne!(
        first.0, second.0,
        "the next agent, not the one who declined"
    );
    // The first agent's stale screen cannot take the call now ringing elsewhere.
    let (status, _) = server
        .post(&format!("/api/v1/calls/{id}/accept"), Some(&first.1), None)
        .await;
    assert_eq!(status, 404, "no longer that agent's call");
    assert_eq!(ringing_at(&server, &agents, &id).await.0, second.0);
    let (status, _) = server
        .post(&format!("/api/v1/calls/{id}/cancel"), Some(&second.1), None)
        .await;
    assert_eq!(status, 200);

    // Both declined: the request waits at the front of the queue, offered to nobody.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let view = request_view(&server, &id, &customer).await;
    assert_eq!(view["state"], "requested");
    assert_eq!(view["position"], 1, "first in line");
    for (login, token) in &agents {
        let (_, queue) = server.get("/api/v1/me/queue", Some(token)).await;
        assert_eq!(queue["ringing"], json!([]), "{login} is not asked again");
        assert_eq!(queue["waiting"], 1);
    }
    // Its log shows both offers and both returns.
    let call = server.call_view(&id, &boss).await;
    assert_eq!(call["state"], "requested");
    let events: Vec<String> = server
        .store
        .call_events(&kefu_signaling::accounts::CallId(id.clone()))
        .await
        .expect("log")
        .into_iter()
        .map(|e| e.event)
        .collect();
    assert_eq!(
        events,
        [
            "customer_request",
            "assigned",
            "reoffer",
            "assigned",
            "reoffer"
        ]
    );
}

#[tokio::test]
async fn a_request_that_rings_out_goes_to_the_next_agent_until_its_wait_limit() {
    let server = spawn_app().await;
    let (agents, boss) = two_agents(&server).await;
    let enterprise = server
        .store
        .enterprise_by_main_account(ENTERPRISE)
        .await
        .expect("get")
        .expect("enterprise");
    server
        .store
        .set_ring_timeout(&enterprise.id, 1)
        .await
        .expect("ring timeout");
    kefu_signaling::accounts::admin::set_request_wait(&server.store, ENTERPRISE, 4)
        .await
        .expect("wait limit");
    let (id, customer) = service_request(&server, "video").await;

    let first = ringing_at(&server, &agents, &id).await;
    // Nobody answers: after a second it rings the other agent.
    let second = wait_until("the other agent to ring", WAIT, || async {
        let now = ringing_at(&server, &agents, &id).await;
        (now.0 != first.0).then_some(now)
    })
    .await;
    assert_ne!(first.0, second.0);

    // Nobody else to ask: it waits until its 4 s are up, then times out.
    let ended = server
        .wait_for_call_state(&id, &boss, "timed_out", WAIT)
        .await;
    assert_eq!(ended["end_reason"], "ring_timeout");
    let waited =
        ended["ended_at"].as_i64().expect("ended") - ended["created_at"].as_i64().expect("created");
    assert!(
        (3_900..=6_500).contains(&waited),
        "ended by the wait limit after {waited} ms"
    );
    assert_eq!(
        request_view(&server, &id, &customer).await["state"],
        "timed_out"
    );
}
