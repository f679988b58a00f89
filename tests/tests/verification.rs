//! Face verification through the API with the real engine and real photos:
//! enrolment and its errors, a passed challenge opening the gate, failures and the
//! lock, the phone link, and encryption at rest.

use std::time::Duration;

use base64::Engine;
use kefu_signaling::accounts::UserRole;
use kefu_tests::face_check::{follow_challenge, post_frame};
use kefu_tests::faces::{self, FRONTAL, SOMEONE_ELSE, TURNED_RIGHT};
use kefu_tests::scenario::{ENTERPRISE, PASSWORD, enterprise_with_agent};
use kefu_tests::{TestServer, spawn_app};
use reqwest::StatusCode;
use serde_json::{Value, json};

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

async fn alice_id(server: &TestServer, boss: &str) -> String {
    let (_, agents) = server.get("/api/v1/agents", Some(boss)).await;
    agents[0]["id"].as_str().expect("id").to_owned()
}

/// The scenario enterprise with alice enrolled from the frontal photo: alice's and
/// boss's bearers, alice's id.
async fn enrolled_alice(server: &TestServer) -> (String, String, String) {
    let (alice, boss) = enterprise_with_agent(server).await;
    let agent = alice_id(server, &boss).await;
    let (status, view) = enrol(server, &boss, &agent, &[faces::photo_bytes(FRONTAL)]).await;
    assert_eq!(status, 200, "{view}");
    (alice, boss, agent)
}

async fn enrol(
    server: &TestServer,
    boss: &str,
    agent: &str,
    photos: &[Vec<u8>],
) -> (StatusCode, Value) {
    let photos: Vec<String> = photos.iter().map(|p| b64(p)).collect();
    server
        .put(
            &format!("/api/v1/users/{agent}/face-reference"),
            Some(boss),
            Some(json!({ "photos": photos })),
        )
        .await
}

async fn start_attempt(server: &TestServer, alice: &str) -> (StatusCode, Value) {
    server
        .post("/api/v1/me/verification/attempts", Some(alice), None)
        .await
}

/// The records as the admin's dashboard lists them.
async fn records(server: &TestServer, boss: &str) -> Vec<Value> {
    let (status, rows) = server.get("/api/v1/verifications", Some(boss)).await;
    assert_eq!(status, 200, "{rows}");
    rows.as_array().expect("rows").clone()
}

async fn audit_actions(server: &TestServer, boss: &str) -> Vec<String> {
    let (status, log) = server.get("/api/v1/audit", Some(boss)).await;
    assert_eq!(status, 200, "{log}");
    log.as_array()
        .expect("entries")
        .iter()
        .map(|e| e["action"].as_str().unwrap_or_default().to_owned())
        .collect()
}

#[tokio::test]
async fn each_bad_reference_photo_gets_its_reason_and_a_good_one_enrols_and_replacing_is_audited() {
    let server = spawn_app().await;
    let (alice, boss) = enterprise_with_agent(&server).await;
    let agent = alice_id(&server, &boss).await;

    let (status, gate) = server
        .get("/api/v1/me/verification-gate", Some(&alice))
        .await;
    assert_eq!(status, 200);
    assert_eq!(gate["enrolled"], false, "{gate}");
    let (status, body) = start_attempt(&server, &alice).await;
    assert_eq!(
        (status.as_u16(), body["error"].as_str()),
        (409, Some("no_face_reference"))
    );

    let coffee = std::fs::read(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../test-data/coffee.png"),
    )
    .expect("coffee.png");
    let mut huge = faces::photo_bytes(FRONTAL);
    huge.resize(10 * 1024 * 1024 + 10, 0);
    let cases: Vec<(Vec<u8>, u16, &str)> = vec![
        (b"%PDF-1.4 not a photo".to_vec(), 422, "photo_not_an_image"),
        (huge, 413, "photo_too_large"),
        (coffee, 422, "photo_no_face"),
        (
            faces::side_by_side(FRONTAL, SOMEONE_ELSE),
            422,
            "photo_several_faces",
        ),
        (
            faces::altered(FRONTAL, |m| faces::scaled(m, 220.0)),
            422,
            "photo_face_too_small",
        ),
        (
            faces::altered(FRONTAL, faces::darker),
            422,
            "photo_too_dark",
        ),
        (
            faces::altered(FRONTAL, faces::blurred),
            422,
            "photo_too_blurry",
        ),
    ];
    for (photo, want_status, want_code) in cases {
        // The bad photo second: the error names which one.
        let (status, body) = enrol(
            &server,
            &boss,
            &agent,
            &[faces::photo_bytes(FRONTAL), photo],
        )
        .await;
        assert_eq!(status.as_u16(), want_status, "{want_code}: {body}");
        assert_eq!(body["error"], want_code, "{body}");
        assert_eq!(body["detail"]["index"], 1, "{body}");
    }
    let (status, view) = server
        .get(
            &format!("/api/v1/users/{agent}/face-reference"),
            Some(&boss),
        )
        .await;
    assert_eq!(
        (status.as_u16(), &view["enrolled"]),
        (200, &json!(false)),
        "nothing was kept"
    );

    let (status, view) = enrol(
        &server,
        &boss,
        &agent,
        &[
            faces::photo_bytes(FRONTAL),
            faces::photo_bytes(TURNED_RIGHT),
        ],
    )
    .await;
    assert_eq!(status, 200, "{view}");
    assert_eq!(
        (
            view["enrolled"].clone(),
            view["photo_count"].clone(),
            view["photos_kept"].clone()
        ),
        (json!(true), json!(2), json!(false))
    );
    let (status, _) = enrol(&server, &boss, &agent, &[faces::photo_bytes(FRONTAL)]).await;
    assert_eq!(status, 200);
    let actions = audit_actions(&server, &boss).await;
    assert!(
        actions.contains(&"face_reference_enrolled".to_owned()),
        "{actions:?}"
    );
    assert!(
        actions.contains(&"face_reference_replaced".to_owned()),
        "{actions:?}"
    );
    let (status, body) = enrol(&server, &boss, &agent, &[]).await;
    assert_eq!(
        (status.as_u16(), body["error"].as_str()),
        (422, Some("validation"))
    );
}

#[tokio::test]
async fn following_the_challenge_passes_and_the_agent_may_call_out() {
    let server = spawn_app().await;
    let (alice, boss, _) = enrolled_alice(&server).await;
    let (status, body) = server
        .post(
            "/api/v1/calls",
            Some(&alice),
            Some(json!({"kind": "video"})),
        )
        .await;
    assert_eq!(
        (status.as_u16(), body["error"].as_str()),
        (403, Some("verification_required"))
    );

    let (status, attempt) = start_attempt(&server, &alice).await;
    assert_eq!(status, 201, "{attempt}");
    assert_eq!(attempt["progress"]["state"], "look_at_camera");
    let path = format!(
        "/api/v1/me/verification/attempts/{}/frames",
        attempt["id"].as_str().expect("id")
    );
    let last = follow_challenge(&[&server], &path, Some(&alice), None, None).await;
    assert_eq!(last["state"], "passed", "{last}");

    let (status, gate) = server
        .get("/api/v1/me/verification-gate", Some(&alice))
        .await;
    assert_eq!(
        (status.as_u16(), &gate["verification_required"]),
        (200, &json!(false)),
        "{gate}"
    );
    let (status, call) = server
        .post(
            "/api/v1/calls",
            Some(&alice),
            Some(json!({"kind": "video"})),
        )
        .await;
    assert_eq!(status, 201, "{call}");
    let rows = records(&server, &boss).await;
    assert_eq!(rows.len(), 1);
    assert_eq!(
        (rows[0]["passed"].clone(), rows[0]["channel"].clone()),
        (json!(true), json!("workbench"))
    );
    assert_eq!(rows[0]["id_number_masked"], "110***********1234");
    // A finished attempt answers its result and takes no more frames into account.
    let (status, again) = post_frame(
        &server,
        &path,
        Some(&alice),
        None,
        faces::frame(SOMEONE_ELSE),
    )
    .await;
    assert_eq!(
        (status.as_u16(), again["state"].as_str()),
        (200, Some("passed"))
    );
}

#[tokio::test]
async fn another_person_fails_five_failures_lock_and_only_an_admin_clears_the_lock() {
    let server = spawn_app().await;
    let (alice, boss, agent) = enrolled_alice(&server).await;

    for n in 1..=5 {
        let (status, attempt) = loop {
            let (status, body) = start_attempt(&server, &alice).await;
            if status == StatusCode::TOO_MANY_REQUESTS {
                assert_eq!(body["error"], "verification_backoff", "{body}");
                let wait = body["detail"]["retry_after_ms"]
                    .as_u64()
                    .expect("retry_after_ms");
                assert!(wait <= 3_000, "{wait}");
                tokio::time::sleep(Duration::from_millis(wait + 50)).await;
                continue;
            }
            break (status, body);
        };
        assert_eq!(status, 201, "attempt {n}: {attempt}");
        let path = format!(
            "/api/v1/me/verification/attempts/{}/frames",
            attempt["id"].as_str().expect("id")
        );
        let last =
            follow_challenge(&[&server], &path, Some(&alice), None, Some(SOMEONE_ELSE)).await;
        assert_eq!(
            (last["state"].as_str(), last["reason"].as_str()),
            (Some("failed"), Some("different_person")),
            "{last}"
        );
    }
    tokio::time::sleep(Duration::from_millis(3_100)).await;
    let (status, body) = start_attempt(&server, &alice).await;
    assert_eq!(
        (status.as_u16(), body["error"].as_str()),
        (423, Some("verification_locked")),
        "{body}"
    );
    let (_, gate) = server
        .get("/api/v1/me/verification-gate", Some(&alice))
        .await;
    assert_eq!(gate["locked"], true);

    let rows = records(&server, &boss).await;
    assert_eq!(rows.len(), 5);
    for r in &rows {
        assert_eq!(
            (r["passed"].clone(), r["failure_reason"].clone()),
            (json!(false), json!("different_person")),
            "{r}"
        );
        assert_eq!(r["id_number_masked"], "110***********1234");
    }
    // The agent cannot clear it; another enterprise's admin cannot see it; the admin can.
    let clear = format!("/api/v1/users/{agent}/verification-lock/clear");
    assert_eq!(server.post(&clear, Some(&alice), None).await.0, 403);
    let (status, view) = server.post(&clear, Some(&boss), None).await;
    assert_eq!(
        (status.as_u16(), &view["verification_locked"]),
        (200, &json!(false)),
        "{view}"
    );
    assert_eq!(
        server.post(&clear, Some(&boss), None).await.0,
        409,
        "cleared already"
    );
    let actions = audit_actions(&server, &boss).await;
    assert!(
        actions.contains(&"verification_lock_cleared".to_owned()),
        "{actions:?}"
    );
    assert!(
        actions.contains(&"verifications_read".to_owned()),
        "reading records is audited: {actions:?}"
    );
    let (status, body) = start_attempt(&server, &alice).await;
    assert_eq!(status, 201, "{body}");
}

#[tokio::test]
async fn the_phone_link_is_single_use_bound_to_its_agent_and_passes_the_check() {
    let server = spawn_app().await;
    let (alice, boss, _) = enrolled_alice(&server).await;
    server.enterprise("4002").await;
    server
        .user("4002", "mallory", UserRole::Agent, PASSWORD)
        .await;
    let mallory = server.login("mallory", PASSWORD).await;
    assert_ne!(ENTERPRISE, "4002");

    let (_, attempt) = start_attempt(&server, &alice).await;
    let id = attempt["id"].as_str().expect("id").to_owned();
    // The workbench started: a face seen, the first step shown; then the agent turns
    // to the phone and takes longer than a step's window to scan the code.
    let own = format!("/api/v1/me/verification/attempts/{id}/frames");
    let mut shown = false;
    for _ in 0..10 {
        let (_, p) = post_frame(&server, &own, Some(&alice), None, faces::frame(FRONTAL)).await;
        if p["state"] == "step" {
            shown = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert!(shown, "the first step shows");
    assert_eq!(
        server
            .post(
                &format!("/api/v1/me/verification/attempts/{id}/phone-link"),
                Some(&mallory),
                None
            )
            .await
            .0,
        404,
        "another agent cannot ask for alice's link"
    );
    let (status, link) = server
        .post(
            &format!("/api/v1/me/verification/attempts/{id}/phone-link"),
            Some(&alice),
            None,
        )
        .await;
    assert_eq!(status, 200, "{link}");
    assert!(link["qr_svg"].as_str().is_some_and(|s| s.contains("<svg")));
    tokio::time::sleep(Duration::from_millis(6_500)).await;
    let (status, waiting) = server
        .get(
            &format!("/api/v1/me/verification/attempts/{id}"),
            Some(&alice),
        )
        .await;
    assert_eq!(status, 200);
    assert_ne!(
        waiting["progress"]["state"], "failed",
        "waiting for the phone is no failure: {waiting}"
    );
    let (status, body) = server
        .post(
            &format!("/api/v1/me/verification/attempts/{id}/phone-link"),
            Some(&alice),
            None,
        )
        .await;
    assert_eq!(
        (status.as_u16(), body["error"].as_str()),
        (409, Some("phone_link_issued")),
        "one link per attempt: a new one would restart the challenge at will"
    );
    let url = link["url"].as_str().expect("url");
    let token = url.rsplit('/').next().expect("token");
    assert!(url.contains("/verify/"), "{url}");
    let claim = format!("/api/v1/phone-verification/{token}");

    // Another enterprise's agent, signed in on that phone: not found, and not used up.
    let (status, body) = server.post(&claim, Some(&mallory), None).await;
    assert_eq!(
        (status.as_u16(), body["error"].as_str()),
        (404, Some("not_found"))
    );
    let (status, phone) = server.post(&claim, None, None).await;
    assert_eq!(status, 200, "{phone}");
    assert_eq!(phone["attempt_id"], id.as_str());
    let (status, body) = server.post(&claim, None, None).await;
    assert_eq!(
        (status.as_u16(), body["error"].as_str()),
        (410, Some("link_used")),
        "single use"
    );

    let (status, _) = post_frame(
        &server,
        "/api/v1/phone-verification/frames",
        None,
        Some("forged"),
        faces::frame(FRONTAL),
    )
    .await;
    assert_eq!(status, 401);
    let device = phone["device_token"].as_str().expect("device token");
    let last = follow_challenge(
        &[&server],
        "/api/v1/phone-verification/frames",
        None,
        Some(device),
        None,
    )
    .await;
    assert_eq!(last["state"], "passed", "{last}");
    let (status, seen) = server
        .get(
            &format!("/api/v1/me/verification/attempts/{id}"),
            Some(&alice),
        )
        .await;
    // The workbench sees the phone's result on the attempt (and on its event channel),
    // and the gate now lets the call through.
    assert_eq!(
        (status.as_u16(), &seen["progress"]["state"]),
        (200, &json!("passed")),
        "{seen}"
    );
    let (_, gate) = server
        .get("/api/v1/me/verification-gate", Some(&alice))
        .await;
    assert_eq!(gate["verification_required"], false, "{gate}");
    let rows = records(&server, &boss).await;
    assert_eq!(rows[0]["channel"], "phone");
}

#[tokio::test]
async fn frames_that_are_not_pictures_are_refused_and_the_attempt_goes_on() {
    let server = spawn_app().await;
    let (alice, _, _) = enrolled_alice(&server).await;
    let (_, attempt) = start_attempt(&server, &alice).await;
    let id = attempt["id"].as_str().expect("id");
    let path = format!("/api/v1/me/verification/attempts/{id}/frames");
    let (status, body) = post_frame(
        &server,
        &path,
        Some(&alice),
        None,
        b"\xff\xd8garbage".to_vec(),
    )
    .await;
    assert_eq!(
        (status.as_u16(), body["error"].as_str()),
        (422, Some("frame_not_an_image")),
        "{body}"
    );
    let (status, _) = post_frame(
        &server,
        &path,
        Some(&alice),
        None,
        vec![0u8; 2 * 1024 * 1024],
    )
    .await;
    assert_eq!(status, 413);
    let last = follow_challenge(&[&server], &path, Some(&alice), None, None).await;
    assert_eq!(last["state"], "passed", "{last}");
}

/// Every file under `dir`, recursively.
fn files_under(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                out.extend(files_under(&p));
            } else {
                out.push(p);
            }
        }
    }
    out
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

#[tokio::test]
async fn templates_and_kept_photos_are_encrypted_at_rest() {
    let server = spawn_app().await;
    let (_, boss) = enterprise_with_agent(&server).await;
    let agent = alice_id(&server, &boss).await;
    let (status, _) = server
        .put(
            "/api/v1/enterprise/verification-settings",
            Some(&boss),
            Some(json!({"keep_enrollment_photos": true})),
        )
        .await;
    assert_eq!(status, 200);
    let photo = faces::photo_bytes(FRONTAL);
    let (status, view) = enrol(&server, &boss, &agent, std::slice::from_ref(&photo)).await;
    assert_eq!(
        (status.as_u16(), &view["photos_kept"]),
        (200, &json!(true)),
        "{view}"
    );

    // The template the engine makes of this photo, computed here independently.
    let models = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../models");
    let mut engine = kefu_vision::FaceEngine::load(&models).expect("models");
    let template = kefu_vision::FaceVision::enroll(&mut engine, &photo)
        .expect("engine")
        .expect("enrols");
    let raw = template.to_bytes();
    let raw_b64 = b64(&raw);

    // The database: the stored reference, read directly.
    let row: (String, String) =
        sqlx::query_as("SELECT templates_enc, photo_keys FROM face_references WHERE agent_id = $1")
            .bind(&agent)
            .fetch_one(server.store.pool())
            .await
            .expect("row");
    assert!(
        !row.0.contains(&raw_b64[..24]),
        "no plain template in the database"
    );
    let sealed = base64::engine::general_purpose::STANDARD
        .decode(&row.0)
        .expect("base64");
    assert!(
        !contains(&sealed, &raw[..32]),
        "no raw embedding bytes in the database"
    );
    // Anything else the database files hold (SQLite here), byte for byte.
    for f in files_under(server.data_dir()) {
        let bytes = std::fs::read(&f).expect("read");
        assert!(
            !contains(&bytes, &raw[..32]),
            "{} holds the raw template",
            f.display()
        );
        assert!(
            !contains(&bytes, &photo[..64]),
            "{} holds the photo",
            f.display()
        );
    }
    // The kept photo: in the object store, not as a JPEG.
    let keys: Vec<String> = serde_json::from_str(&row.1).expect("keys");
    assert_eq!(keys.len(), 1);
    let objects = files_under(&server.data_dir().join("objects"));
    let stored: Vec<_> = objects
        .iter()
        .filter(|p| p.to_string_lossy().contains("enrollment"))
        .collect();
    assert!(!stored.is_empty(), "the photo was kept: {objects:?}");
    for p in stored {
        let bytes = std::fs::read(p).expect("read");
        assert!(
            !bytes.starts_with(&[0xff, 0xd8, 0xff]),
            "{} is a plain JPEG",
            p.display()
        );
        assert!(bytes.len() >= photo.len(), "the whole photo, encrypted");
    }
}
