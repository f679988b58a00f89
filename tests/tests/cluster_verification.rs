//! A face check across two signaling nodes on one Redis and PostgreSQL (as `make test`
//! starts them), behind a load balancer that sends each request to either node: the
//! attempt lives on the node that opened it, and the other node hands it every request
//! it receives for it — the workbench's frames, the phone link, the phone's frames —
//! and the result reaches the workbench's event channel on either node.

use std::time::Duration;

use base64::Engine;
use kefu_signaling::cluster::config::NodeRole;
use kefu_tests::cluster::{cluster_node, engines, fresh_database, fresh_prefix};
use kefu_tests::face_check::{follow_challenge, post_frame};
use kefu_tests::faces::{self, FRONTAL};
use kefu_tests::scenario::enterprise_with_agent;
use kefu_tests::signaling::EventChannel;
use kefu_tests::{TestServer, spawn_node};
use serde_json::json;

async fn two_signaling_nodes() -> Option<[TestServer; 2]> {
    let engines = engines()?;
    let prefix = fresh_prefix();
    let database = fresh_database(&engines.postgres).await;
    let mut nodes = Vec::new();
    for name in ["sig-1", "sig-2"] {
        let dir = tempfile::tempdir().expect("data folder");
        nodes.push(
            spawn_node(NodeRole::Signaling, dir, |c| {
                cluster_node(c, &engines, &database, &prefix, name)
            })
            .await,
        );
    }
    nodes.try_into().ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_face_check_passes_with_its_requests_spread_over_two_signaling_nodes() {
    let Some(nodes) = two_signaling_nodes().await else {
        return;
    };
    let [one, two] = &nodes;
    let (alice, boss) = enterprise_with_agent(one).await;
    let (_, agents) = one.get("/api/v1/agents", Some(&boss)).await;
    let agent = agents[0]["id"].as_str().expect("agent id");
    let photo = base64::engine::general_purpose::STANDARD.encode(faces::photo_bytes(FRONTAL));
    let (status, view) = one
        .put(
            &format!("/api/v1/users/{agent}/face-reference"),
            Some(&boss),
            Some(json!({ "photos": [photo] })),
        )
        .await;
    assert_eq!(status, 200, "{view}");

    // The workbench's own camera: opened on node 1, frames to both nodes.
    let (status, attempt) = one
        .post("/api/v1/me/verification/attempts", Some(&alice), None)
        .await;
    assert_eq!(status, 201, "{attempt}");
    let id = attempt["id"].as_str().expect("id").to_owned();
    let (status, seen) = two
        .get(
            &format!("/api/v1/me/verification/attempts/{id}"),
            Some(&alice),
        )
        .await;
    assert_eq!((status.as_u16(), &seen["id"]), (200, &json!(id)), "{seen}");
    // Nothing unauthenticated crosses to the holder.
    let (status, _) = two
        .get(&format!("/api/v1/me/verification/attempts/{id}"), None)
        .await;
    assert_eq!(status, 401);
    let frames = format!("/api/v1/me/verification/attempts/{id}/frames");
    // The holder's own refusal comes back as it gave it.
    let (status, refused) =
        post_frame(two, &frames, Some(&alice), None, b"not a picture".to_vec()).await;
    assert_eq!(status, 422, "{refused}");
    let last = follow_challenge(&[one, two], &frames, Some(&alice), None, None).await;
    assert_eq!(last["state"], "passed", "{last}");
    let (_, gate) = two.get("/api/v1/me/verification-gate", Some(&alice)).await;
    assert_eq!(gate["verification_required"], false, "{gate}");

    // The workbench listens on node 1 while the phone's attempt runs on node 2.
    let mut events = EventChannel::subscribe(&one.ws_url, &alice).await;

    // The phone: opened on node 2, the link asked for and opened through node 1.
    let (status, attempt) = two
        .post("/api/v1/me/verification/attempts", Some(&alice), None)
        .await;
    assert_eq!(status, 201, "{attempt}");
    let id = attempt["id"].as_str().expect("id").to_owned();
    let (status, link) = one
        .post(
            &format!("/api/v1/me/verification/attempts/{id}/phone-link"),
            Some(&alice),
            None,
        )
        .await;
    assert_eq!(status, 200, "{link}");
    let token = link["url"]
        .as_str()
        .and_then(|u| u.rsplit('/').next())
        .expect("link token");
    let claim = format!("/api/v1/phone-verification/{token}");
    let (status, phone) = one.post(&claim, None, None).await;
    assert_eq!(status, 200, "{phone}");
    assert_eq!(phone["attempt_id"], id.as_str());
    let (status, used) = two.post(&claim, None, None).await;
    assert_eq!(
        (status.as_u16(), used["error"].as_str()),
        (410, Some("link_used")),
        "single use on every node: {used}"
    );
    let device = phone["device_token"].as_str().expect("device token");
    let last = follow_challenge(
        &[one, two],
        "/api/v1/phone-verification/frames",
        None,
        Some(device),
        None,
    )
    .await;
    assert_eq!(last["state"], "passed", "{last}");
    let told = events
        .next_where(Duration::from_secs(5), |event| {
            event["type"] == "verification" && event["attempt_id"] == id.as_str()
        })
        .await
        .expect("node 1's event channel told the workbench the result node 2 decided, within 5 s");
    assert_eq!(told["passed"], true, "{told}");
    let (status, seen) = one
        .get(
            &format!("/api/v1/me/verification/attempts/{id}"),
            Some(&alice),
        )
        .await;
    assert_eq!(
        (status.as_u16(), &seen["progress"]["state"]),
        (200, &json!("passed")),
        "{seen}"
    );

    // What no node holds is unknown everywhere, without going round in circles.
    for node in &nodes {
        let (status, _) = node
            .get(
                "/api/v1/me/verification/attempts/no-such-attempt",
                Some(&alice),
            )
            .await;
        assert_eq!(status, 404);
        let (status, _) = node
            .post("/api/v1/phone-verification/no-such-link", None, None)
            .await;
        assert_eq!(status, 404);
    }
    let (status, rows) = one.get("/api/v1/verifications", Some(&boss)).await;
    assert_eq!(status, 200, "{rows}");
    let channels: Vec<&str> = rows
        .as_array()
        .expect("records")
        .iter()
        .filter_map(|r| r["channel"].as_str())
        .collect();
    assert_eq!(channels.len(), 2, "{rows}");
    assert!(
        channels.contains(&"phone") && channels.contains(&"workbench"),
        "{rows}"
    );
}
