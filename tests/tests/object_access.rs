//! Object-level authorization with real objects: a caller whose role may use an
//! endpoint, asking about an object that is not theirs (another agent's of the same
//! enterprise, or another enterprise's), gets exactly the answer an unknown id gets,
//! leaves the object as it was, and does not find it in any list; its owner still can.
//! (tests/tests/api.rs has the matrix of roles over unknown ids.)

use std::time::Duration;

use kefu_recorder::{ObjectStore, RecordingKind, StorageConfig, naming};
use kefu_signaling::accounts::{CallId, UserId, UserRole};
use kefu_signaling::calls::Call;
use kefu_signaling::calls::machine::{CallKind, CallState, Direction, Party};
use kefu_signaling::clock::now_ms;
use kefu_signaling::moderation::Incident;
use kefu_signaling::moderation::reactions::evidence_key;
use kefu_signaling::recordings::{Recording, RecordingState};
use kefu_tests::face_check::post_frame;
use kefu_tests::faces::{self, FRONTAL, SOMEONE_ELSE};
use kefu_tests::scenario::{
    PASSWORD, another_agent, enterprise_with_agent, invite, reception_group, service_request,
    verify,
};
use kefu_tests::{TestServer, spawn_app, spawn_app_with, wait_until};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

/// The main account of the other enterprise.
const RIVAL: &str = "4002";

/// Who takes part: in the scenario enterprise the agents alice and bob and the admin
/// boss; in the rival enterprise the admin rival and the agent mallory.
struct Cast {
    alice: String,
    bob: String,
    boss: String,
    rival: String,
    mallory: String,
    alice_id: String,
    mallory_id: String,
}

async fn user_id(server: &TestServer, login: &str) -> String {
    let (user, _) = server
        .store
        .user_by_login(login)
        .await
        .expect("store")
        .expect("user");
    user.id.0
}

async fn cast(server: &TestServer) -> Cast {
    let (alice, boss) = enterprise_with_agent(server).await;
    let bob = another_agent(server, &boss, "bob", "none").await;
    server.enterprise(RIVAL).await;
    server.user(RIVAL, "rival", UserRole::Admin, PASSWORD).await;
    server
        .user(RIVAL, "mallory", UserRole::Agent, PASSWORD)
        .await;
    Cast {
        alice,
        bob,
        boss,
        rival: server.login("rival", PASSWORD).await,
        mallory: server.login("mallory", PASSWORD).await,
        alice_id: user_id(server, "alice").await,
        mallory_id: user_id(server, "mallory").await,
    }
}

/// One caller, named for the assertion messages.
#[derive(Clone, Copy)]
struct Caller<'a> {
    who: &'a str,
    token: &'a str,
}

fn as_<'a>(who: &'a str, token: &'a str) -> Caller<'a> {
    Caller { who, token }
}

fn fresh_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// `method path` answers `want` to `caller`, status and body exactly as the same
/// request with `id` replaced by one that does not exist: nothing tells the caller
/// that the object is there.
async fn answers_like_unknown(
    server: &TestServer,
    caller: Caller<'_>,
    method: Method,
    path: &str,
    id: &str,
    body: Option<Value>,
    want: u16,
) {
    let unknown = path.replace(id, &fresh_id());
    let base = &server.base_url;
    let token = Some(caller.token);
    let (status, seen) =
        kefu_tests::http::call(base, method.clone(), path, token, body.clone()).await;
    let (unknown_status, unknown_seen) =
        kefu_tests::http::call(base, method.clone(), &unknown, token, body).await;
    assert_eq!(
        status.as_u16(),
        want,
        "{method} {path} as {}: {}",
        caller.who,
        brief(&seen)
    );
    assert!(
        status == unknown_status && seen == unknown_seen,
        "{method} {path} as {} answers unlike an unknown id: {status} {} vs {unknown_status} {}",
        caller.who,
        brief(&seen),
        brief(&unknown_seen)
    );
}

/// The start of an answer, for messages (a leaked picture is no text to print).
fn brief(answer: &Value) -> String {
    answer.to_string().chars().take(300).collect()
}

/// `GET` or `POST` returning the raw body (pictures, media): status, content type, bytes.
async fn fetch_bytes(
    server: &TestServer,
    method: Method,
    path: &str,
    token: Option<&str>,
) -> (StatusCode, String, Vec<u8>) {
    let mut req = reqwest::Client::new().request(method, format!("{}{path}", server.base_url));
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let res = req.send().await.expect("request");
    let status = res.status();
    let kind = res
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    (status, kind, res.bytes().await.expect("body").to_vec())
}

/// The ids in a JSON list.
fn ids(list: &Value) -> Vec<String> {
    list.as_array()
        .unwrap_or_else(|| panic!("a list: {list}"))
        .iter()
        .filter_map(|row| row["id"].as_str().map(str::to_owned))
        .collect()
}

async fn listed_ids(server: &TestServer, path: &str, token: &str) -> Vec<String> {
    let (status, list) = server.get(path, Some(token)).await;
    assert_eq!(status, 200, "GET {path}: {list}");
    ids(&list)
}

/// Enrols `agent` from the frontal photo, as its admin `boss`.
async fn enrol(server: &TestServer, boss: &str, agent: &str) -> Value {
    use base64::Engine;
    let photo = base64::engine::general_purpose::STANDARD.encode(faces::photo_bytes(FRONTAL));
    let (status, view) = server
        .put(
            &format!("/api/v1/users/{agent}/face-reference"),
            Some(boss),
            Some(json!({ "photos": [photo] })),
        )
        .await;
    assert_eq!(status, 200, "{view}");
    view
}

/// The audited actions on `target` in the log `admin` reads, sorted (entries of the
/// same millisecond have no order).
async fn audit_of(server: &TestServer, admin: &str, target: &str) -> Vec<String> {
    let (status, log) = server.get("/api/v1/audit", Some(admin)).await;
    assert_eq!(status, 200, "{log}");
    let mut actions: Vec<String> = log
        .as_array()
        .expect("entries")
        .iter()
        .filter(|e| e["target_id"] == target)
        .filter_map(|e| e["action"].as_str().map(str::to_owned))
        .collect();
    actions.sort_unstable();
    actions
}

#[tokio::test]
async fn a_face_check_attempt_and_its_phone_link_are_the_agents_alone() {
    let server = spawn_app().await;
    let c = cast(&server).await;
    enrol(&server, &c.boss, &c.alice_id).await;
    let (status, attempt) = server
        .post("/api/v1/me/verification/attempts", Some(&c.alice), None)
        .await;
    assert_eq!(status, 201, "{attempt}");
    let id = attempt["id"].as_str().expect("id").to_owned();
    let own = format!("/api/v1/me/verification/attempts/{id}");
    let frames = format!("{own}/frames");
    let phone_link = format!("{own}/phone-link");

    let agents = [
        as_("another agent of the enterprise", &c.bob),
        as_("another enterprise's agent", &c.mallory),
    ];
    for caller in agents {
        answers_like_unknown(&server, caller, Method::GET, &own, &id, None, 404).await;
        answers_like_unknown(&server, caller, Method::POST, &phone_link, &id, None, 404).await;
        let unknown_frames = frames.replace(&id, &fresh_id());
        let frame = || faces::frame(FRONTAL);
        let (status, seen) = post_frame(&server, &frames, Some(caller.token), None, frame()).await;
        let unknown = post_frame(&server, &unknown_frames, Some(caller.token), None, frame()).await;
        assert_eq!(status, 404, "frames as {}: {seen}", caller.who);
        assert_eq!((status, seen), unknown, "frames as {}", caller.who);
    }
    // Admins use none of the agents' attempt routes, this one or an unknown one.
    for caller in [as_("its admin", &c.boss), as_("another admin", &c.rival)] {
        answers_like_unknown(&server, caller, Method::GET, &own, &id, None, 403).await;
    }

    // The owner's attempt is untouched: no frame of theirs was judged, no link issued.
    let (status, seen) = server.get(&own, Some(&c.alice)).await;
    assert_eq!(status, 200, "{seen}");
    assert_eq!(
        (seen["id"].as_str(), seen["progress"]["state"].as_str()),
        (Some(id.as_str()), Some("look_at_camera")),
        "{seen}"
    );
    let (status, progress) = post_frame(
        &server,
        &frames,
        Some(&c.alice),
        None,
        faces::frame(FRONTAL),
    )
    .await;
    assert_eq!(status, 200, "{progress}");
    assert_ne!(progress["state"], "failed", "{progress}");
    let (status, link) = server.post(&phone_link, Some(&c.alice), None).await;
    assert_eq!(status, 200, "the others' tries issued no link: {link}");
    let token = link["url"]
        .as_str()
        .and_then(|u| u.rsplit('/').next())
        .expect("link token")
        .to_owned();

    // Opened on a phone signed in as anyone but alice: unknown, and not used up.
    let claim = format!("/api/v1/phone-verification/{token}");
    let everyone_else = [
        as_("another agent of the enterprise", c.bob.as_str()),
        as_("its admin", &c.boss),
        as_("another enterprise's admin", &c.rival),
        as_("another enterprise's agent", &c.mallory),
    ];
    for caller in everyone_else {
        answers_like_unknown(&server, caller, Method::POST, &claim, &token, None, 404).await;
    }
    let (status, phone) = server.post(&claim, None, None).await;
    assert_eq!(
        status, 200,
        "the link still works for alice's phone: {phone}"
    );
    assert_eq!(phone["attempt_id"], id.as_str());
    // Used now: others still learn nothing (not even that it was used); a phone does.
    answers_like_unknown(
        &server,
        everyone_else[0],
        Method::POST,
        &claim,
        &token,
        None,
        404,
    )
    .await;
    let (status, body) = server.post(&claim, None, None).await;
    assert_eq!(
        (status.as_u16(), body["error"].as_str()),
        (410, Some("link_used")),
        "{body}"
    );

    // Phone frames go by the device token alone: no session stands in for it, not
    // even the attempt's own agent's.
    let phone_frames = "/api/v1/phone-verification/frames";
    for session in [&c.bob, &c.alice] {
        let (status, _) = post_frame(
            &server,
            phone_frames,
            Some(session),
            None,
            faces::frame(FRONTAL),
        )
        .await;
        assert_eq!(status, 401);
    }
    let device = phone["device_token"].as_str().expect("device token");
    let (status, progress) = post_frame(
        &server,
        phone_frames,
        None,
        Some(device),
        faces::frame(FRONTAL),
    )
    .await;
    assert_eq!(status, 200, "{progress}");
    answers_like_unknown(&server, agents[0], Method::GET, &own, &id, None, 404).await;
}

/// A server whose embedded object store listens where this test knows, with keys it
/// knows, and a client of that store: evidence and media are put as the product does.
async fn spawn_with_object_store() -> (TestServer, ObjectStore) {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let (access_key, secret_key) = ("kefuobjectaccess", "object-access-test-secret-0123456789");
    let server = spawn_app_with(|c| {
        c.storage.embedded_port = port;
        c.storage.access_key = access_key.into();
        c.storage.secret_key = secret_key.into();
    })
    .await;
    let objects = ObjectStore::new(&StorageConfig {
        embedded: false,
        endpoint: format!("http://127.0.0.1:{port}"),
        access_key: access_key.into(),
        secret_key: secret_key.into(),
        ..StorageConfig::default()
    });
    (server, objects)
}

/// An incident of alice's call with its evidence and mosaic stored, encrypted, under
/// the keys moderation uses.
async fn incident_with_evidence(
    server: &TestServer,
    objects: &ObjectStore,
    evidence: &[u8],
    mosaic: &[u8],
) -> String {
    let (alice, _) = server
        .store
        .user_by_login("alice")
        .await
        .expect("store")
        .expect("alice");
    let id = fresh_id();
    let mut keys = Vec::new();
    for (kind, bytes) in [("evidence", evidence), ("mosaic", mosaic)] {
        let key = evidence_key(&alice.enterprise_id, &id, kind);
        objects
            .put(
                &key,
                server.data_key.encrypt_bytes(bytes),
                "application/octet-stream",
            )
            .await
            .expect("evidence stored");
        keys.push(key);
    }
    server
        .store
        .insert_incident(&Incident {
            id: id.clone(),
            enterprise_id: alice.enterprise_id,
            call_id: fresh_id(),
            agent_id: Some(alice.id),
            agent_name: None,
            party: "customer".into(),
            action: "blurred".into(),
            scores: vec![0.93, 0.96],
            evidence_key: Some(keys[0].clone()),
            mosaic_key: Some(keys[1].clone()),
            created_at: now_ms(),
            review: "pending".into(),
            review_note: None,
            reviewed_by: None,
            reviewed_at: None,
        })
        .await
        .expect("incident");
    id
}

#[tokio::test]
async fn moderation_evidence_is_for_its_enterprises_admins_only() {
    let (server, objects) = spawn_with_object_store().await;
    let c = cast(&server).await;
    let evidence = faces::frame(SOMEONE_ELSE);
    let mosaic = faces::altered(SOMEONE_ELSE, |m| faces::scaled(m, 48.0));
    let id = incident_with_evidence(&server, &objects, &evidence, &mosaic).await;
    let incident = format!("/api/v1/moderation/incidents/{id}");
    let (mosaic_path, reveal, review) = (
        format!("{incident}/mosaic"),
        format!("{incident}/reveal"),
        format!("{incident}/review"),
    );
    let decision = || Some(json!({"decision": "confirmed"}));

    for (caller, want) in [
        (as_("another enterprise's admin", c.rival.as_str()), 404),
        // Agents, even the incident's own, see no incident at all.
        (as_("the incident's agent", &c.alice), 403),
        (as_("another agent", &c.bob), 403),
    ] {
        answers_like_unknown(&server, caller, Method::GET, &mosaic_path, &id, None, want).await;
        answers_like_unknown(&server, caller, Method::POST, &reveal, &id, None, want).await;
        answers_like_unknown(
            &server,
            caller,
            Method::POST,
            &review,
            &id,
            decision(),
            want,
        )
        .await;
    }
    for query in ["", &format!("?agent={}", c.alice_id)] {
        let theirs = listed_ids(
            &server,
            &format!("/api/v1/moderation/incidents{query}"),
            &c.rival,
        )
        .await;
        assert!(theirs.is_empty(), "{query}: {theirs:?}");
    }

    // The own admin: the mosaic, then the clear picture (audited), and the review
    // the others' tries did not make.
    let (status, kind, bytes) =
        fetch_bytes(&server, Method::GET, &mosaic_path, Some(&c.boss)).await;
    assert_eq!((status.as_u16(), kind.as_str()), (200, "image/jpeg"));
    assert!(bytes == mosaic, "the stored mosaic, decrypted");
    let (status, kind, bytes) = fetch_bytes(&server, Method::POST, &reveal, Some(&c.boss)).await;
    assert_eq!((status.as_u16(), kind.as_str()), (200, "image/jpeg"));
    assert!(bytes == evidence, "the stored evidence, decrypted");
    assert_eq!(
        audit_of(&server, &c.boss, &id).await,
        ["moderation_evidence_revealed"],
        "one reveal: the refused ones left nothing"
    );
    assert!(audit_of(&server, &c.rival, &id).await.is_empty());
    let (status, listed) = server
        .get("/api/v1/moderation/incidents", Some(&c.boss))
        .await;
    assert_eq!(status, 200);
    assert_eq!(ids(&listed), [id.as_str()]);
    assert_eq!(
        (
            listed[0]["evidence"].as_bool(),
            listed[0]["review"].as_str()
        ),
        (Some(true), Some("pending")),
        "{listed}"
    );
    let (status, reviewed) = server.post(&review, Some(&c.boss), decision()).await;
    assert_eq!(
        (status.as_u16(), reviewed["review"].as_str()),
        (200, Some("confirmed"))
    );
}

#[tokio::test]
async fn a_face_reference_is_seen_and_changed_by_its_enterprises_admins_only() {
    let server = spawn_app().await;
    let c = cast(&server).await;
    let (status, _) = server
        .put(
            "/api/v1/enterprise/verification-settings",
            Some(&c.boss),
            Some(json!({"keep_enrollment_photos": true})),
        )
        .await;
    assert_eq!(status, 200);
    let enrolled = enrol(&server, &c.boss, &c.alice_id).await;
    assert_eq!(enrolled["photos_kept"], true, "{enrolled}");
    server
        .store
        .lock_verification(&UserId(c.alice_id.clone()), now_ms())
        .await
        .expect("lock");
    let reference = format!("/api/v1/users/{}/face-reference", c.alice_id);
    let clear = format!("/api/v1/users/{}/verification-lock/clear", c.alice_id);
    let photo = {
        use base64::Engine;
        base64::engine::general_purpose::STANDARD.encode(faces::photo_bytes(SOMEONE_ELSE))
    };
    let replace = || Some(json!({ "photos": [photo.clone()] }));

    let rival = as_("another enterprise's admin", c.rival.as_str());
    let id = c.alice_id.as_str();
    answers_like_unknown(&server, rival, Method::GET, &reference, id, None, 404).await;
    answers_like_unknown(&server, rival, Method::PUT, &reference, id, replace(), 404).await;
    answers_like_unknown(&server, rival, Method::POST, &clear, id, None, 404).await;
    let bob = as_("another agent", c.bob.as_str());
    answers_like_unknown(&server, bob, Method::GET, &reference, id, None, 403).await;
    answers_like_unknown(&server, bob, Method::PUT, &reference, id, replace(), 403).await;
    answers_like_unknown(&server, bob, Method::POST, &clear, id, None, 403).await;
    // And the other way round: the rival's agent is unknown to boss.
    let theirs = format!("/api/v1/users/{}/face-reference", c.mallory_id);
    let boss = as_(
        "an admin, about another enterprise's agent",
        c.boss.as_str(),
    );
    answers_like_unknown(
        &server,
        boss,
        Method::GET,
        &theirs,
        &c.mallory_id,
        None,
        404,
    )
    .await;

    // Nothing changed: the same reference, still locked.
    let (status, view) = server.get(&reference, Some(&c.boss)).await;
    assert_eq!(status, 200, "{view}");
    assert_eq!(view["enrolled_at"], enrolled["enrolled_at"], "{view}");
    assert_eq!(view["verification_locked"], true, "{view}");
    // What the admin sees says whether, never what: no templates, no photo keys.
    let mut fields: Vec<&str> = view
        .as_object()
        .expect("object")
        .keys()
        .map(String::as_str)
        .collect();
    fields.sort_unstable();
    assert_eq!(
        fields,
        [
            "enrolled",
            "enrolled_at",
            "photo_count",
            "photos_kept",
            "verification_locked"
        ]
    );
    let (templates, photo_keys): (String, String) =
        sqlx::query_as("SELECT templates_enc, photo_keys FROM face_references WHERE agent_id = $1")
            .bind(&c.alice_id)
            .fetch_one(server.store.pool())
            .await
            .expect("row");
    let text = view.to_string();
    assert!(!text.contains(&templates[..24]), "{text}");
    let keys: Vec<String> = serde_json::from_str(&photo_keys).expect("keys");
    assert!(!keys.is_empty() && keys.iter().all(|k| !text.contains(k.as_str())));

    let (status, cleared) = server.post(&clear, Some(&c.boss), None).await;
    assert_eq!(
        (status.as_u16(), &cleared["verification_locked"]),
        (200, &json!(false)),
        "{cleared}"
    );
}

/// A finished call of `agent` with a ready recording whose media is `media`.
async fn ready_recording(
    server: &TestServer,
    objects: &ObjectStore,
    agent: &str,
    media: &[u8],
) -> (String, String) {
    let (user, _) = server
        .store
        .user_by_login(agent)
        .await
        .expect("store")
        .expect("agent");
    let now = now_ms();
    let call = Call {
        id: CallId(fresh_id()),
        enterprise_id: user.enterprise_id.clone(),
        direction: Direction::AgentInitiated,
        kind: CallKind::Voice,
        state: CallState::Ended {
            by: Party::Customer,
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
    server.store.create_call(&call, "test").await.expect("call");
    let id = fresh_id();
    let object_key =
        naming::object_key(user.enterprise_id.as_str(), &id, RecordingKind::Voice, now);
    objects
        .put(&object_key, media.to_vec(), "audio/mp4")
        .await
        .expect("media stored");
    let rec = Recording {
        object_key,
        display_name: naming::display_name(RecordingKind::Voice, now, naming::time_zone("")),
        id: id.clone(),
        enterprise_id: user.enterprise_id,
        call_id: call.id.clone(),
        agent_id: Some(user.id),
        customer_id: None,
        kind: RecordingKind::Voice,
        state: RecordingState::Ready,
        failure_kind: None,
        failure_reason: None,
        started_at: now - 5_000,
        ended_at: Some(now),
        duration_ms: Some(5_000),
        size_bytes: Some(i64::try_from(media.len()).expect("size")),
    };
    server
        .store
        .insert_recording(&rec, now)
        .await
        .expect("recording");
    (id, call.id.0)
}

/// Follows a play or download link; returns the media's bytes.
async fn media_behind(server: &TestServer, link: &Value) -> Vec<u8> {
    let url = link["url"].as_str().expect("url");
    let (status, _, bytes) = fetch_bytes(server, Method::GET, url, None).await;
    assert_eq!(status, 200, "{url}");
    bytes
}

#[tokio::test]
async fn a_recording_is_seen_by_its_agent_and_its_enterprises_admins_only() {
    let (server, objects) = spawn_with_object_store().await;
    let c = cast(&server).await;
    let media = b"not really an mp4, but alice's call all the same".to_vec();
    let (id, call_id) = ready_recording(&server, &objects, "alice", &media).await;
    let one = format!("/api/v1/recordings/{id}");
    let (play, download, retry) = (
        format!("{one}/play"),
        format!("{one}/download"),
        format!("{one}/retry"),
    );

    // Agents see the recordings of their own calls only; retrying is for admins.
    for (caller, retry_answer) in [
        (as_("another agent of the enterprise", c.bob.as_str()), 403),
        (as_("another enterprise's agent", &c.mallory), 403),
        (as_("another enterprise's admin", &c.rival), 404),
    ] {
        answers_like_unknown(&server, caller, Method::GET, &one, &id, None, 404).await;
        answers_like_unknown(&server, caller, Method::POST, &play, &id, None, 404).await;
        answers_like_unknown(&server, caller, Method::POST, &download, &id, None, 404).await;
        answers_like_unknown(
            &server,
            caller,
            Method::POST,
            &retry,
            &id,
            None,
            retry_answer,
        )
        .await;
        for query in [
            String::new(),
            format!("?agent_id={}", c.alice_id),
            format!("?call_id={call_id}"),
        ] {
            let listed =
                listed_ids(&server, &format!("/api/v1/recordings{query}"), caller.token).await;
            assert!(!listed.contains(&id), "{} lists it: {query}", caller.who);
        }
    }

    // Its agent and its admin see it, play it, download it.
    for (who, token) in [("its agent", &c.alice), ("its admin", &c.boss)] {
        let (status, seen) = server.get(&one, Some(token)).await;
        assert_eq!(
            (status.as_u16(), seen["id"].as_str()),
            (200, Some(id.as_str())),
            "{who}"
        );
        assert!(
            listed_ids(&server, "/api/v1/recordings", token)
                .await
                .contains(&id),
            "{who}"
        );
        let (status, link) = server.post(&play, Some(token), None).await;
        assert_eq!(status, 200, "{who}: {link}");
        assert!(media_behind(&server, &link).await == media, "{who}");
    }
    let (status, link) = server.post(&download, Some(&c.boss), None).await;
    assert_eq!(status, 200, "{link}");
    assert!(media_behind(&server, &link).await == media);
    let (status, body) = server.post(&retry, Some(&c.boss), None).await;
    assert_eq!(
        status, 409,
        "found, but ready recordings are not retried: {body}"
    );
    assert_eq!(
        audit_of(&server, &c.boss, &id).await,
        ["recording.download", "recording.play", "recording.play"],
        "the refused requests left nothing"
    );
    assert!(audit_of(&server, &c.rival, &id).await.is_empty());
}

#[tokio::test]
async fn a_call_is_seen_and_handled_by_its_agent_only() {
    let server = spawn_app().await;
    let c = cast(&server).await;
    verify(&server, "alice", true).await;
    let (id, _code) = invite(&server, &c.alice, "video").await;
    let call = format!("/api/v1/calls/{id}");
    let agent_routes = [
        (Method::GET, format!("{call}/room-token")),
        (Method::GET, format!("{call}/invite.svg")),
        (Method::POST, format!("{call}/cancel")),
        (Method::POST, format!("{call}/accept")),
    ];

    for caller in [
        as_("another agent of the enterprise", c.bob.as_str()),
        as_("another enterprise's agent", &c.mallory),
    ] {
        answers_like_unknown(&server, caller, Method::GET, &call, &id, None, 404).await;
        for (method, path) in &agent_routes {
            answers_like_unknown(&server, caller, method.clone(), path, &id, None, 404).await;
        }
    }
    // Admins: their own enterprise's calls to look at (not the invite secret), nobody
    // else's; the agent's actions are for agents, for a real call as for an unknown one.
    let rival = as_("another enterprise's admin", c.rival.as_str());
    answers_like_unknown(&server, rival, Method::GET, &call, &id, None, 404).await;
    for caller in [rival, as_("its admin", &c.boss)] {
        for (method, path) in &agent_routes {
            answers_like_unknown(&server, caller, method.clone(), path, &id, None, 403).await;
        }
    }
    let (status, seen) = server.get(&call, Some(&c.boss)).await;
    assert_eq!(status, 200, "{seen}");
    assert!(seen.get("invite_url").is_none(), "{seen}");

    // Still inviting, and all alice's.
    let view = server.call_view(&id, &c.alice).await;
    assert_eq!(view["state"], "inviting", "{view}");
    assert!(view["invite_url"].as_str().is_some(), "{view}");
    let (status, ticket) = server
        .get(&format!("{call}/room-token"), Some(&c.alice))
        .await;
    assert_eq!(status, 200, "{ticket}");
    let (status, kind, svg) = fetch_bytes(
        &server,
        Method::GET,
        &format!("{call}/invite.svg"),
        Some(&c.alice),
    )
    .await;
    assert_eq!((status.as_u16(), kind.as_str()), (200, "image/svg+xml"));
    assert!(String::from_utf8_lossy(&svg).contains("<svg"));
    let (status, cancelled) = server
        .post(&format!("{call}/cancel"), Some(&c.alice), None)
        .await;
    assert_eq!(
        (status.as_u16(), cancelled["state"].as_str()),
        (200, Some("cancelled"))
    );

    // A customer's request ringing at alice: nobody else answers or declines it.
    reception_group(&server, &[("alice", &c.alice)]).await;
    let (incoming, _) = service_request(&server, "video").await;
    wait_until(
        "the request to ring at alice",
        Duration::from_secs(5),
        || async {
            let (_, queue) = server.get("/api/v1/me/queue", Some(&c.alice)).await;
            ids(&queue["ringing"]).contains(&incoming).then_some(())
        },
    )
    .await;
    let ringing = format!("/api/v1/calls/{incoming}");
    for caller in [
        as_("another agent of the enterprise", c.bob.as_str()),
        as_("another enterprise's agent", &c.mallory),
    ] {
        for action in ["accept", "cancel"] {
            let path = format!("{ringing}/{action}");
            answers_like_unknown(&server, caller, Method::POST, &path, &incoming, None, 404).await;
        }
        let (_, queue) = server.get("/api/v1/me/queue", Some(caller.token)).await;
        assert!(
            !ids(&queue["ringing"]).contains(&incoming),
            "{}",
            caller.who
        );
    }
    let (status, accepted) = server
        .post(&format!("{ringing}/accept"), Some(&c.alice), None)
        .await;
    assert_eq!(
        (status.as_u16(), accepted["state"].as_str()),
        (200, Some("connecting")),
        "{accepted}"
    );
}

#[tokio::test]
async fn verification_records_are_listed_to_their_enterprises_admins_only() {
    let server = spawn_app().await;
    let c = cast(&server).await;
    verify(&server, "alice", false).await;
    verify(&server, "alice", true).await;

    for query in ["", &format!("?agent_id={}", c.alice_id)] {
        let path = format!("/api/v1/verifications{query}");
        let theirs = listed_ids(&server, &path, &c.rival).await;
        assert!(theirs.is_empty(), "{path}: {theirs:?}");
        let ours = listed_ids(&server, &path, &c.boss).await;
        assert_eq!(ours.len(), 2, "{path}");
    }
    let (status, _, csv) = fetch_bytes(
        &server,
        Method::GET,
        "/api/v1/verifications.csv",
        Some(&c.rival),
    )
    .await;
    assert_eq!(status, 200);
    let csv = String::from_utf8(csv).expect("utf-8");
    assert_eq!(csv.lines().count(), 1, "the header alone: {csv}");
    assert!(!csv.contains(&c.alice_id), "{csv}");
}
