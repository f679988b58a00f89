//! One call lifecycle: whoever moves a call (REST, the WebSocket, the sweeper), the
//! same reactions run: recording when media is up; the room, the SFU and the
//! recording released when it ends, with a typed end reason.

use std::time::Duration;

use kefu_proto::signaling::{ErrorCode, ServerMessage};
use kefu_signaling::calls::{EndReason, Party};
use kefu_tests::scenario::{
    accepted_invite, connected_call, enterprise_with_agent, reception_group, service_request,
    verify,
};
use kefu_tests::{
    RtcClient, SignalingClient, TestServer, spawn_app, spawn_app_in, spawn_app_with, wait_until,
};
use serde_json::json;

const WAIT: Duration = Duration::from_secs(15);

/// Waits until `client` was told the call ended; returns the reason and who.
async fn told_call_ended(client: &RtcClient) -> (EndReason, Option<Party>) {
    wait_until("the call_ended notice", WAIT, || async {
        client.messages.lock().await.iter().find_map(|m| match m {
            ServerMessage::CallEnded { reason, by } => Some((*reason, *by)),
            _ => None,
        })
    })
    .await
}

async fn wait_until_sfu_holds(server: &TestServer, participants: f64) {
    wait_until("the SFU's participant count", WAIT, || async {
        (server.metric("kefu_sfu_participants").await == participants).then_some(())
    })
    .await;
}

/// Whether the room behind `token` is closed (its call is over).
async fn room_is_closed(server: &TestServer, token: &str) -> bool {
    let mut ws = SignalingClient::connect(&server.ws_url).await;
    matches!(
        ws.join(token).await,
        ServerMessage::Error {
            code: ErrorCode::UnknownRoom,
            ..
        }
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_accepted_over_rest_is_recorded_when_media_comes_up() {
    let server = spawn_app().await;
    let (alice, boss) = enterprise_with_agent(&server).await;
    reception_group(&server, &[("alice", &alice)]).await;
    let (id, customer_token) = service_request(&server, "video").await;
    server
        .wait_for_call_state(&id, &alice, "ringing", WAIT)
        .await;

    let (status, accepted) = server
        .post(&format!("/api/v1/calls/{id}/accept"), Some(&alice), None)
        .await;
    assert_eq!(status, 200, "{accepted}");
    assert_eq!(accepted["state"], "connecting");
    let (_, ticket) = server
        .get(&format!("/api/v1/calls/{id}/room-token"), Some(&alice))
        .await;
    let agent = RtcClient::join_with_token(
        &server,
        ticket["room_token"].as_str().expect("token"),
        "agent",
    )
    .await;
    let customer = RtcClient::join_with_token(&server, &customer_token, "customer").await;
    customer.wait_for_more(20, 20, WAIT).await;
    server
        .wait_for_call_state(&id, &boss, "connected", WAIT)
        .await;
    let live = server.recordings_of(&id, &boss).await;
    assert_eq!(live[0]["state"], "recording", "{live}");

    agent.hang_up();
    let ended = server.wait_for_call_state(&id, &boss, "ended", WAIT).await;
    assert_eq!(ended["end_reason"], "hang_up");
    assert_eq!(ended["ended_by"], "agent");
    assert_eq!(
        told_call_ended(&customer).await,
        (EndReason::HangUp, Some(Party::Agent)),
        "the customer is told, and let go"
    );
    wait_until_sfu_holds(&server, 0.0).await;
    wait_until("the recording to be stored", WAIT, || async {
        let list = server.recordings_of(&id, &boss).await;
        (list[0]["state"] == "ready").then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_cancelling_over_rest_leaves_nothing_running() {
    let server = spawn_app().await;
    let (alice, boss) = enterprise_with_agent(&server).await;
    verify(&server, "alice", true).await;
    let (id, _agent_token, customer_token) = accepted_invite(&server, &alice, "video").await;
    // The customer is in, with media to the SFU; the agent has not joined yet.
    let customer = RtcClient::join_with_token(&server, &customer_token, "customer").await;
    wait_until_sfu_holds(&server, 1.0).await;

    let (status, cancelled) = server
        .post(&format!("/api/v1/calls/{id}/cancel"), Some(&alice), None)
        .await;
    assert_eq!(status, 200, "{cancelled}");
    assert_eq!(cancelled["state"], "cancelled");
    assert_eq!(cancelled["end_reason"], "cancelled");
    assert_eq!(
        told_call_ended(&customer).await,
        (EndReason::Cancelled, Some(Party::Agent))
    );
    wait_until_sfu_holds(&server, 0.0).await;
    assert!(
        room_is_closed(&server, &customer_token).await,
        "the room went with the call"
    );
    assert_eq!(server.recordings_of(&id, &boss).await, json!([]));
    assert_eq!(server.metric("kefu_participants").await, 0.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_customer_cancelling_over_rest_frees_the_ringing_agent() {
    let server = spawn_app().await;
    let (alice, _boss) = enterprise_with_agent(&server).await;
    reception_group(&server, &[("alice", &alice)]).await;
    let (id, token) = service_request(&server, "voice").await;
    server
        .wait_for_call_state(&id, &alice, "ringing", WAIT)
        .await;
    let (status, view) = server
        .post(
            &format!("/api/v1/service/requests/{id}/cancel"),
            Some(&token),
            None,
        )
        .await;
    assert_eq!(status, 200, "{view}");
    assert_eq!(view["state"], "cancelled");
    let call = server.call_view(&id, &alice).await;
    assert_eq!(call["end_reason"], "cancelled");
    assert_eq!(call["ended_by"], "customer");
    let (_, queue) = server.get("/api/v1/me/queue", Some(&alice)).await;
    assert_eq!(queue["ringing"], json!([]), "nothing rings any more");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_that_never_returns_ends_the_call_as_network_lost() {
    let server = spawn_app_with(|c| c.signaling.reconnect_grace_secs = 2).await;
    let (alice, boss) = enterprise_with_agent(&server).await;
    verify(&server, "alice", true).await;
    let (id, agent, mut customer) = connected_call(&server, &alice).await;
    server
        .wait_for_call_state(&id, &boss, "connected", WAIT)
        .await;
    customer.lose_signaling();
    let ended = server.wait_for_call_state(&id, &boss, "ended", WAIT).await;
    assert_eq!(ended["end_reason"], "network_lost", "{ended}");
    assert_eq!(ended["ended_by"], "customer", "not stored as a hang-up");
    assert_eq!(
        told_call_ended(&agent).await,
        (EndReason::NetworkLost, Some(Party::Customer))
    );
    let stored = wait_until("the recording to be stored", WAIT, || async {
        let list = server.recordings_of(&id, &boss).await;
        (list[0]["state"] == "ready").then_some(list)
    })
    .await;
    assert!(stored[0]["duration_ms"].as_i64() > Some(0), "{stored}");
}

/// Another node ended the call and could not tell the node capturing it (a media node
/// judged lost that was not): the rows say ended and processing while the capture
/// goes on here. The sweeper closes the capture and the recording is stored.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_ended_elsewhere_with_its_recording_processing_still_gets_it_stored() {
    let server = spawn_app().await;
    let (alice, boss) = enterprise_with_agent(&server).await;
    verify(&server, "alice", true).await;
    let (id, _agent, customer) = connected_call(&server, &alice).await;
    let recording = wait_until("the recording to start", WAIT, || async {
        let list = server.recordings_of(&id, &boss).await;
        (list[0]["state"] == "recording").then_some(list[0]["id"].clone())
    })
    .await;
    customer.wait_for_more(30, 30, WAIT).await;

    let ended = sqlx::query(
        "UPDATE calls SET state = 'ended', \
         state_json = '{\"state\":\"ended\",\"by\":\"system\",\"reason\":\"node_lost\"}' \
         WHERE id = $1",
    )
    .bind(&id)
    .execute(server.store.pool())
    .await
    .expect("call ended elsewhere");
    assert_eq!(ended.rows_affected(), 1);
    let processing = sqlx::query("UPDATE recordings SET state = 'processing' WHERE id = $1")
        .bind(recording.as_str().unwrap_or_default())
        .execute(server.store.pool())
        .await
        .expect("recording marked processing elsewhere");
    assert_eq!(processing.rows_affected(), 1);

    let stored = wait_until("the recording to be stored", WAIT, || async {
        let list = server.recordings_of(&id, &boss).await;
        (list[0]["state"] != "processing").then_some(list)
    })
    .await;
    assert_eq!(stored[0]["state"], "ready", "{stored}");
    assert!(stored[0]["duration_ms"].as_i64() > Some(500), "{stored}");
}

/// kefu died with a call live (simulated: after a clean stop, the call's row is put
/// back to `connected`, as a `kill -9` would have left it). The next start ends it with
/// `system_restart` and the agent's slot is free again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_ends_the_calls_a_dead_process_left_live_and_frees_their_agents() {
    let server = spawn_app().await;
    let (alice, _boss) = enterprise_with_agent(&server).await;
    verify(&server, "alice", true).await;
    let (id, _, _) = accepted_invite(&server, &alice, "video").await;
    let data = server.stop_keeping_data().await;

    let store = kefu_signaling::store::Store::open(&Default::default(), data.path())
        .await
        .expect("the stopped server's database");
    sqlx::query(
        "UPDATE calls SET state = 'connected', state_json = '{\"state\":\"connected\"}', \
         connected_at = created_at, ended_at = NULL WHERE id = $1",
    )
    .bind(&id)
    .execute(store.pool())
    .await
    .expect("left live");
    let (agent, _) = store
        .user_by_login("alice")
        .await
        .expect("get")
        .expect("alice");
    assert_eq!(
        store.live_calls_of(&agent.id).await.expect("count"),
        1,
        "the dead process's call holds a slot"
    );
    store.close().await;

    let server = spawn_app_in(data, |_| {}).await;
    let alice = server.login("alice", kefu_tests::scenario::PASSWORD).await;
    let call = server.call_view(&id, &alice).await;
    assert_eq!(call["state"], "ended", "{call}");
    assert_eq!(call["end_reason"], "system_restart");
    assert_eq!(call["ended_by"], "system");
    assert_eq!(
        server.store.live_calls_of(&agent.id).await.expect("count"),
        0,
        "the agent's capacity is free again"
    );
}

/// The calling agent's page goes away (hang-up button, closed tab) before the customer
/// opened the invite: the call is withdrawn, not left inviting.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_leaving_before_the_customer_came_cancels_the_call() {
    let server = spawn_app().await;
    let (alice, _boss) = enterprise_with_agent(&server).await;
    verify(&server, "alice", true).await;
    let (status, created) = server
        .post(
            "/api/v1/calls",
            Some(&alice),
            Some(json!({"kind": "video"})),
        )
        .await;
    assert_eq!(status, 201, "{created}");
    let id = created["id"].as_str().expect("id").to_owned();
    let (_, ticket) = server
        .get(&format!("/api/v1/calls/{id}/room-token"), Some(&alice))
        .await;
    let agent = RtcClient::join_with_token(
        &server,
        ticket["room_token"].as_str().expect("token"),
        "agent",
    )
    .await;
    assert_eq!(server.call_view(&id, &alice).await["state"], "inviting");
    agent.hang_up();
    let call = server
        .wait_for_call_state(&id, &alice, "cancelled", WAIT)
        .await;
    assert_eq!(call["end_reason"], "cancelled");
    assert_eq!(call["ended_by"], "agent");
    wait_until_sfu_holds(&server, 0.0).await;
}
