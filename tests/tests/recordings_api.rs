//! The recordings API over HTTP: who sees what, the admin's retry of a failed
//! recording (its spool is still on disk), play links with Range, and the audit log.

use std::time::{Duration, Instant};

use kefu_recorder::transcode::Transcoder;
use kefu_recorder::{FailureKind, RecordingKind, Side, naming};
use kefu_signaling::accounts::{CallId, UserRole};
use kefu_signaling::calls::Call;
use kefu_signaling::calls::machine::{CallKind, CallState, Direction, Party as CallParty};
use kefu_signaling::clock::now_ms;
use kefu_signaling::recordings::{Recording, RecordingState};
use kefu_synthetic::party_frames;
use kefu_tests::{TestServer, spawn_app};

const PASSWORD: &str = "correct horse battery";

/// A finished call of `agent` whose recording failed to upload; its spool holds 3 s.
async fn failed_recording(server: &TestServer, agent: &str) -> String {
    let (user, _) = server
        .store
        .user_by_login(agent)
        .await
        .expect("store")
        .expect("agent");
    let now = now_ms();
    let call_row = Call {
        id: CallId(uuid()),
        enterprise_id: user.enterprise_id.clone(),
        direction: Direction::AgentInitiated,
        kind: CallKind::Video,
        state: CallState::Ended {
            by: CallParty::Customer,
            reason: kefu_signaling::calls::EndReason::HangUp,
        },
        agent_id: Some(user.id.clone()),
        customer_id: None,
        group_id: None,
        invite_code: None,
        created_at: now - 10_000,
        state_since: now,
        ring_deadline: None,
        connected_at: Some(now - 5_000),
        ended_at: Some(now),
    };
    server
        .store
        .create_call(&call_row, "test")
        .await
        .expect("call");
    let id = uuid();
    let rec = Recording {
        object_key: naming::object_key(user.enterprise_id.as_str(), &id, RecordingKind::Video, now),
        display_name: naming::display_name(RecordingKind::Video, now, naming::time_zone("")),
        id: id.clone(),
        enterprise_id: user.enterprise_id,
        call_id: call_row.id,
        agent_id: Some(user.id),
        customer_id: None,
        kind: RecordingKind::Video,
        state: RecordingState::Failed,
        failure_kind: Some(FailureKind::Upload),
        failure_reason: Some("create multipart upload: HTTP 503".into()),
        started_at: now - 5_000,
        ended_at: Some(now),
        duration_ms: None,
        size_bytes: None,
    };
    server
        .store
        .insert_recording(&rec, now)
        .await
        .expect("recording");
    // What the transcoder left in the spool before the upload failed.
    let spool = server.data_dir().join("spool").join(format!("{id}.mp4"));
    let start = Instant::now();
    let mut tc = Transcoder::create(&spool, RecordingKind::Video, Default::default(), start)
        .expect("transcoder");
    for f in party_frames(Side::Agent, 440.0, 3.0, Some(3.0), start).expect("media") {
        tc.push(f);
    }
    tc.finish(start + Duration::from_secs(3)).expect("finish");
    id
}

fn uuid() -> String {
    uuid::Uuid::new_v4().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admins_retry_a_failed_recording_and_play_it_with_range() {
    let server = spawn_app().await;
    server.enterprise("4001").await;
    server
        .user("4001", "alice", UserRole::Agent, PASSWORD)
        .await;
    server.user("4001", "bob", UserRole::Agent, PASSWORD).await;
    server.user("4001", "boss", UserRole::Admin, PASSWORD).await;
    let id = failed_recording(&server, "alice").await;
    let alice = server.login("alice", PASSWORD).await;
    let bob = server.login("bob", PASSWORD).await;
    let boss = server.login("boss", PASSWORD).await;
    let base = &server.base_url;
    let one = format!("/api/v1/recordings/{id}");

    // The agent of the call sees it, without the failure's inner reason; others don't.
    let (status, seen) = server.get(&one, Some(&alice)).await;
    assert_eq!(status, 200);
    assert_eq!(seen["state"], "failed");
    assert_eq!(seen["failure_kind"], "upload");
    assert!(seen["failure_reason"].is_null(), "reasons are for admins");
    assert_eq!(seen["retryable"], false);
    let (status, _) = server.get(&one, Some(&bob)).await;
    assert_eq!(status, 404);
    let (_, bobs) = server.get("/api/v1/recordings", Some(&bob)).await;
    assert_eq!(bobs.as_array().map(Vec::len), Some(0));
    let retry = format!("{one}/retry");
    let (status, _) = server.post(&retry, Some(&alice), None).await;
    assert_eq!(status, 403, "agents cannot retry");
    let (status, _) = server
        .post(&format!("{one}/play"), Some(&alice), None)
        .await;
    assert_eq!(status, 409, "not ready yet");

    // The admin sees why, retries, and it becomes ready.
    let (_, seen) = server.get(&one, Some(&boss)).await;
    assert_eq!(seen["failure_reason"], "create multipart upload: HTTP 503");
    assert_eq!(seen["retryable"], true);
    let (status, after) = server.post(&retry, Some(&boss), None).await;
    assert_eq!(status, 202);
    assert_eq!(after["state"], "processing");
    let mut ready = serde_json::Value::Null;
    for _ in 0..100 {
        let (_, r) = server.get(&one, Some(&boss)).await;
        if r["state"] == "ready" {
            ready = r;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(ready["state"], "ready", "retried recording becomes ready");
    assert_eq!(ready["duration"], "00:00:03");
    let (status, _) = server.post(&retry, Some(&boss), None).await;
    assert_eq!(status, 409, "only failed recordings are retried");

    // Play link: Range honoured, inline disposition with the stored name.
    let (status, link) = server
        .post(&format!("{one}/play"), Some(&alice), None)
        .await;
    assert_eq!(status, 200);
    let url = format!("{base}{}", link["url"].as_str().expect("url"));
    let client = reqwest::Client::new();
    let whole = client.get(&url).send().await.expect("media");
    assert_eq!(whole.status(), 200);
    assert_eq!(whole.headers()["content-type"], "video/mp4");
    assert_eq!(whole.headers()["accept-ranges"], "bytes");
    let disposition = whole.headers()["content-disposition"]
        .to_str()
        .expect("ascii");
    assert!(disposition.starts_with("inline; ") && disposition.contains("%E8%A7%86%E9%A2%91"));
    let size = whole.bytes().await.expect("body").len();
    assert_eq!(Some(size as i64), ready["size_bytes"].as_i64());
    let part = client
        .get(&url)
        .header("range", "bytes=10-19")
        .send()
        .await
        .expect("range");
    assert_eq!(part.status(), 206);
    assert_eq!(
        part.headers()["content-range"],
        format!("bytes 10-19/{size}").as_str()
    );
    assert_eq!(part.bytes().await.expect("body").len(), 10);
    let bad = client
        .get(&url)
        .header("range", "bytes=0-1,5-6")
        .send()
        .await
        .expect("range");
    assert_eq!(bad.status(), 416);
    let (status, _) = server.get("/media/recordings/forged", None).await;
    assert_eq!(status, 404);

    // Every play, download and retry is in the audit log, with who did it.
    let (_, audit) = server.get("/api/v1/audit", Some(&boss)).await;
    let actions: Vec<&str> = audit
        .as_array()
        .expect("list")
        .iter()
        .filter(|e| e["target_id"] == id.as_str())
        .filter_map(|e| e["action"].as_str())
        .collect();
    assert_eq!(actions, vec!["recording.play", "recording.retry"]);
}
