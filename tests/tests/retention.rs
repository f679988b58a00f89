//! Retention with a moved clock: each enterprise's retention deletes what is older,
//! from the database and the object store, and touches nothing else (another
//! enterprise without retention, a recording still processing, newer items). And
//! removing an agent deletes their face reference at once.

use kefu_recorder::{RecordingKind, naming};
use kefu_signaling::accounts::{CallId, EnterpriseId, User, UserId, UserRole, VerificationId};
use kefu_signaling::calls::Call;
use kefu_signaling::calls::machine::{CallKind, CallState, Direction, Party};
use kefu_signaling::clock::now_ms;
use kefu_signaling::moderation::Incident;
use kefu_signaling::moderation::reactions::evidence_key;
use kefu_signaling::recordings::{Recording, RecordingState};
use kefu_signaling::retention::{DAY_MS, enforce};
use kefu_signaling::verification::VerificationRecord;
use kefu_signaling::verification::references::{StoredReference, photo_key};
use kefu_tests::http::call;
use kefu_tests::{TestServer, spawn_app};
use reqwest::Method;
use serde_json::json;

const PASSWORD: &str = "correct horse battery";

/// What one enterprise holds, by id, with the object keys each owns.
struct Held {
    recording: (String, String),
    processing: (String, String),
    verification: String,
    incident: (String, Vec<String>),
    agent: UserId,
    photos: Vec<String>,
}

async fn agent_of(server: &TestServer, login: &str) -> User {
    server
        .store
        .user_by_login(login)
        .await
        .expect("store")
        .expect("agent")
        .0
}

async fn put_object(server: &TestServer, key: &str) {
    server
        .objects
        .put(key, b"encrypted bytes".to_vec(), "application/octet-stream")
        .await
        .expect("object stored");
}

async fn object_exists(server: &TestServer, key: &str) -> bool {
    server
        .objects
        .size(key)
        .await
        .expect("object store")
        .is_some()
}

async fn recording(
    server: &TestServer,
    agent: &User,
    state: RecordingState,
    at: i64,
) -> (String, String) {
    let call_row = Call {
        id: CallId(uuid::Uuid::new_v4().to_string()),
        enterprise_id: agent.enterprise_id.clone(),
        direction: Direction::AgentInitiated,
        kind: CallKind::Video,
        state: CallState::Ended {
            by: Party::Customer,
            reason: kefu_signaling::calls::EndReason::HangUp,
        },
        agent_id: Some(agent.id.clone()),
        customer_id: None,
        group_id: None,
        invite_code: None,
        created_at: at,
        state_since: at,
        ring_deadline: None,
        connected_at: Some(at),
        ended_at: Some(at + 5_000),
    };
    server
        .store
        .create_call(&call_row, "test")
        .await
        .expect("call");
    let id = uuid::Uuid::new_v4().to_string();
    let key = naming::object_key(agent.enterprise_id.as_str(), &id, RecordingKind::Video, at);
    let rec = Recording {
        object_key: key.clone(),
        display_name: naming::display_name(RecordingKind::Video, at, naming::time_zone("")),
        id: id.clone(),
        enterprise_id: agent.enterprise_id.clone(),
        call_id: call_row.id,
        agent_id: Some(agent.id.clone()),
        customer_id: None,
        kind: RecordingKind::Video,
        state,
        failure_kind: None,
        failure_reason: None,
        started_at: at,
        ended_at: Some(at + 5_000),
        duration_ms: Some(5_000),
        size_bytes: Some(15),
    };
    server
        .store
        .insert_recording(&rec, at)
        .await
        .expect("recording");
    put_object(server, &key).await;
    (id, key)
}

/// A recording, one still processing, a verification record, an incident with its
/// evidence and an enrolled reference with kept photos, all made at `at`.
async fn hold(server: &TestServer, login: &str, at: i64) -> Held {
    let agent = agent_of(server, login).await;
    let e = &agent.enterprise_id;
    let recording_done = recording(server, &agent, RecordingState::Ready, at).await;
    let processing = recording(server, &agent, RecordingState::Processing, at).await;

    let verification = uuid::Uuid::new_v4().to_string();
    server
        .store
        .insert_verification(&VerificationRecord {
            id: VerificationId(verification.clone()),
            enterprise_id: e.clone(),
            agent_id: agent.id.clone(),
            agent_name: agent.real_name.clone(),
            id_number_enc: agent.id_number_enc.clone(),
            passed: true,
            checked_at: at,
            passed_at: Some(at),
            failure_reason: None,
            failure_detail: None,
            channel: "workbench".into(),
        })
        .await
        .expect("verification record");

    let incident = uuid::Uuid::new_v4().to_string();
    let evidence = vec![
        evidence_key(e, &incident, "clear"),
        evidence_key(e, &incident, "mosaic"),
    ];
    for key in &evidence {
        put_object(server, key).await;
    }
    server
        .store
        .insert_incident(&Incident {
            id: incident.clone(),
            enterprise_id: e.clone(),
            call_id: "call".into(),
            agent_id: Some(agent.id.clone()),
            agent_name: None,
            party: "customer".into(),
            action: "blurred".into(),
            scores: vec![0.9],
            evidence_key: Some(evidence[0].clone()),
            mosaic_key: Some(evidence[1].clone()),
            created_at: at,
            review: "pending".into(),
            review_note: None,
            reviewed_by: None,
            reviewed_at: None,
        })
        .await
        .expect("incident");

    let photos: Vec<String> = (0..2).map(|n| photo_key(e, &agent.id, at, n)).collect();
    for key in &photos {
        put_object(server, key).await;
    }
    server
        .store
        .put_face_reference(&StoredReference {
            agent_id: agent.id.clone(),
            enterprise_id: e.clone(),
            templates_enc: "sealed templates".into(),
            photo_count: 2,
            photo_keys: photos.clone(),
            enrolled_at: at,
            enrolled_by: agent.id.clone(),
        })
        .await
        .expect("reference")
        .expect("the agent is there");
    Held {
        recording: recording_done,
        processing,
        verification,
        incident: (incident, evidence),
        agent: agent.id,
        photos,
    }
}

/// Which of `held`'s items are still there, in the database and the object store.
#[derive(Debug, PartialEq, Eq)]
struct Present {
    recording: bool,
    processing: bool,
    verification: bool,
    incident: bool,
    reference: bool,
}

async fn present(server: &TestServer, e: &EnterpriseId, held: &Held) -> Present {
    let store = &server.store;
    let recording = store
        .recording(&held.recording.0)
        .await
        .expect("db")
        .is_some();
    assert_eq!(
        recording,
        object_exists(server, &held.recording.1).await,
        "recording file follows its row"
    );
    let processing = store
        .recording(&held.processing.0)
        .await
        .expect("db")
        .is_some();
    assert_eq!(processing, object_exists(server, &held.processing.1).await);
    let verification = store
        .verifications(e, &Default::default(), 100)
        .await
        .expect("db")
        .iter()
        .any(|v| v.id.0 == held.verification);
    let incident = store
        .incident(e, &held.incident.0)
        .await
        .expect("db")
        .is_some();
    for key in &held.incident.1 {
        assert_eq!(
            incident,
            object_exists(server, key).await,
            "evidence follows its incident"
        );
    }
    let reference = store
        .face_reference(&held.agent)
        .await
        .expect("db")
        .is_some();
    for key in &held.photos {
        assert_eq!(
            reference,
            object_exists(server, key).await,
            "photos follow their reference"
        );
    }
    Present {
        recording,
        processing,
        verification,
        incident,
        reference,
    }
}

const ALL: Present = Present {
    recording: true,
    processing: true,
    verification: true,
    incident: true,
    reference: true,
};

async fn enterprise_id(server: &TestServer, main_account: &str) -> EnterpriseId {
    server
        .store
        .enterprise_by_main_account(main_account)
        .await
        .expect("db")
        .expect("enterprise")
        .id
}

#[tokio::test]
async fn expired_data_goes_from_the_database_and_the_object_store_and_nothing_else() {
    let server = spawn_app().await;
    for (e, agent, boss) in [("5001", "ann", "boss1"), ("5002", "ben", "boss2")] {
        server.enterprise(e).await;
        server.user(e, agent, UserRole::Agent, PASSWORD).await;
        server.user(e, boss, UserRole::Admin, PASSWORD).await;
    }
    let (short, none) = (
        enterprise_id(&server, "5001").await,
        enterprise_id(&server, "5002").await,
    );
    let now = now_ms();
    let kept_short = hold(&server, "ann", now).await;
    // Made 50 days later: still young at the first sweep.
    let newer = recording(
        &server,
        &agent_of(&server, "ann").await,
        RecordingState::Ready,
        now + 50 * DAY_MS,
    )
    .await;
    let kept_none = hold(&server, "ben", now).await;

    // Enterprise 5001 chooses its retention through the API; 5002 never does.
    let boss = server.login("boss1", PASSWORD).await;
    let settings = json!({
        "recordings_days": 30, "verification_days": 365,
        "moderation_days": 90, "face_reference_days": 60
    });
    let (status, body) = call(
        &server.base_url,
        Method::PUT,
        "/api/v1/enterprise/retention-settings",
        Some(&boss),
        Some(settings.clone()),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let (_, body) = call(
        &server.base_url,
        Method::GET,
        "/api/v1/enterprise/retention-settings",
        Some(&boss),
        None,
    )
    .await;
    assert_eq!(body, settings);

    // Today nothing has expired.
    assert!(
        enforce(&server.store, &server.objects, now)
            .await
            .expect("sweep")
            .is_empty()
    );
    assert_eq!(present(&server, &short, &kept_short).await, ALL);

    // 31 days on: the recording goes; the one still processing stays.
    let report = enforce(&server.store, &server.objects, now + 31 * DAY_MS)
        .await
        .expect("sweep");
    assert_eq!(report.len(), 1, "{report:?}");
    assert_eq!(report[0].0, short);
    assert_eq!((report[0].1.recordings, report[0].1.objects), (1, 1));
    assert_eq!(
        present(&server, &short, &kept_short).await,
        Present {
            recording: false,
            ..ALL
        }
    );
    assert!(
        server
            .store
            .recording(&newer.0)
            .await
            .expect("db")
            .is_some()
    );

    // 91 days on: incidents with their evidence and the reference with its photos
    // go; so does the newer recording (81 days old); verification records stay.
    let report = enforce(&server.store, &server.objects, now + 91 * DAY_MS)
        .await
        .expect("sweep");
    let swept = report[0].1;
    assert_eq!(
        (
            swept.recordings,
            swept.incidents,
            swept.face_references,
            swept.objects
        ),
        (1, 1, 1, 5)
    );
    assert_eq!(
        present(&server, &short, &kept_short).await,
        Present {
            recording: false,
            incident: false,
            reference: false,
            ..ALL
        }
    );
    assert!(!object_exists(&server, &newer.1).await);

    // A year on: the verification records too. Only the processing recording is left.
    let report = enforce(&server.store, &server.objects, now + 366 * DAY_MS)
        .await
        .expect("sweep");
    assert_eq!(report[0].1.verification_records, 1);
    assert_eq!(
        present(&server, &short, &kept_short).await,
        Present {
            recording: false,
            verification: false,
            incident: false,
            reference: false,
            processing: true
        }
    );

    // The enterprise without retention lost nothing, and each sweep was audited
    // (counts only) for the enterprise it touched.
    assert_eq!(present(&server, &none, &kept_none).await, ALL);
    let (_, audit) = call(
        &server.base_url,
        Method::GET,
        "/api/v1/audit",
        Some(&boss),
        None,
    )
    .await;
    let sweeps: Vec<_> = audit
        .as_array()
        .expect("entries")
        .iter()
        .filter(|e| e["action"] == "retention_applied")
        .collect();
    assert_eq!(sweeps.len(), 3, "{audit}");
    let other = server.login("boss2", PASSWORD).await;
    let (_, audit) = call(
        &server.base_url,
        Method::GET,
        "/api/v1/audit",
        Some(&other),
        None,
    )
    .await;
    assert!(!audit.to_string().contains("retention_applied"), "{audit}");
    server.stop().await.expect("stop");
}

#[tokio::test]
async fn retention_settings_are_validated_and_an_admins_only() {
    let server = spawn_app().await;
    server.enterprise("5003").await;
    server.user("5003", "cat", UserRole::Agent, PASSWORD).await;
    server
        .user("5003", "boss3", UserRole::Admin, PASSWORD)
        .await;
    let boss = server.login("boss3", PASSWORD).await;
    let path = "/api/v1/enterprise/retention-settings";
    // Unset at first: everything kept.
    let (status, body) = call(&server.base_url, Method::GET, path, Some(&boss), None).await;
    assert_eq!(status, 200);
    assert_eq!(
        body,
        json!({"recordings_days": null, "verification_days": null, "moderation_days": null, "face_reference_days": null})
    );
    for (bad, field) in [
        (json!({"recordings_days": 0}), "recordings_days"),
        (json!({"face_reference_days": 3651}), "face_reference_days"),
        (json!({"moderation_days": -1}), ""),
        (json!({"recording_days": 30}), ""),
    ] {
        let (status, body) = call(
            &server.base_url,
            Method::PUT,
            path,
            Some(&boss),
            Some(bad.clone()),
        )
        .await;
        assert_eq!(status, 422, "{bad} → {body}");
        if !field.is_empty() {
            assert!(body.to_string().contains(field), "{body}");
        }
    }
    // Nothing was stored by the refused requests.
    let (_, body) = call(&server.base_url, Method::GET, path, Some(&boss), None).await;
    assert_eq!(body["recordings_days"], json!(null));
    let agent = server.login("cat", PASSWORD).await;
    let (status, _) = call(
        &server.base_url,
        Method::PUT,
        path,
        Some(&agent),
        Some(json!({"recordings_days": 1})),
    )
    .await;
    assert_eq!(status, 403);
    server.stop().await.expect("stop");
}

#[tokio::test]
async fn removing_an_agent_deletes_their_face_reference_and_ends_their_sessions() {
    let server = spawn_app().await;
    server.enterprise("5004").await;
    server.enterprise("5005").await;
    server.user("5004", "dan", UserRole::Agent, PASSWORD).await;
    server
        .user("5004", "boss4", UserRole::Admin, PASSWORD)
        .await;
    server
        .user("5005", "rival5", UserRole::Admin, PASSWORD)
        .await;
    let e = enterprise_id(&server, "5004").await;
    let held = hold(&server, "dan", now_ms()).await;
    let dan = server.login("dan", PASSWORD).await;
    let boss = server.login("boss4", PASSWORD).await;
    let rival = server.login("rival5", PASSWORD).await;
    let path = format!("/api/v1/agents/{}", held.agent.0);

    // Another enterprise's admin and the agent themself cannot.
    let (status, _) = call(&server.base_url, Method::DELETE, &path, Some(&rival), None).await;
    assert_eq!(status, 404);
    let (status, _) = call(&server.base_url, Method::DELETE, &path, Some(&dan), None).await;
    assert_eq!(status, 403);
    assert_eq!(present(&server, &e, &held).await, ALL);

    let (status, body) = call(&server.base_url, Method::DELETE, &path, Some(&boss), None).await;
    assert_eq!(status, 204, "{body}");
    // The reference and its photos are gone; calls, recordings and records stay.
    assert_eq!(
        present(&server, &e, &held).await,
        Present {
            reference: false,
            ..ALL
        }
    );
    // The agent is out: session, sign-in, the agent list; a second removal is 404.
    let (status, _) = call(
        &server.base_url,
        Method::GET,
        "/api/v1/me",
        Some(&dan),
        None,
    )
    .await;
    assert_eq!(status, 401);
    let (status, _) = call(
        &server.base_url,
        Method::POST,
        "/api/v1/auth/login",
        None,
        Some(json!({"login": "dan", "password": PASSWORD})),
    )
    .await;
    assert_eq!(status, 401);
    let (_, agents) = call(
        &server.base_url,
        Method::GET,
        "/api/v1/agents",
        Some(&boss),
        None,
    )
    .await;
    assert_eq!(agents, json!([]));
    let (status, _) = call(&server.base_url, Method::DELETE, &path, Some(&boss), None).await;
    assert_eq!(status, 404);
    // The login is free again.
    server.user("5004", "dan", UserRole::Agent, PASSWORD).await;
    let (_, audit) = call(
        &server.base_url,
        Method::GET,
        "/api/v1/audit",
        Some(&boss),
        None,
    )
    .await;
    assert!(audit.to_string().contains("agent_removed"), "{audit}");
    server.stop().await.expect("stop");
}

#[tokio::test]
async fn removing_an_agent_withdraws_their_invitation() {
    use kefu_tests::scenario::{enterprise_with_agent, invite, verify};
    let server = spawn_app().await;
    let (alice, boss) = enterprise_with_agent(&server).await;
    verify(&server, "alice", true).await;
    let (call, _code) = invite(&server, &alice, "video").await;
    assert_eq!(server.call_view(&call, &boss).await["state"], "inviting");
    let (_, agents) = server.get("/api/v1/agents", Some(&boss)).await;
    let id = agents[0]["id"].as_str().expect("agent id").to_owned();
    let (status, _) = server
        .delete(&format!("/api/v1/agents/{id}"), Some(&boss))
        .await;
    assert_eq!(status, 204);
    // Nobody is left waiting for an agent who cannot come.
    let view = server.call_view(&call, &boss).await;
    assert_eq!(view["state"], "cancelled", "{view}");
    assert_eq!(view["ended_by"], "agent", "{view}");
    server.stop().await.expect("stop");
}
