//! Content moderation's admin API: settings (validated, turning off audited) and
//! incidents (admins of the enterprise only; another enterprise's are unknown).
//! The screening itself is exercised in the browser (tests/e2e/moderation.test.mjs).

use kefu_signaling::accounts::{UserId, UserRole};
use kefu_signaling::moderation::Incident;
use kefu_tests::spawn_app;
use serde_json::{Value, json};

const PASSWORD: &str = "correct horse battery";

async fn incident(
    server: &kefu_tests::TestServer,
    main_account: &str,
    agent: &str,
    at: i64,
    party: &str,
) -> String {
    let enterprise = server
        .store
        .enterprise_by_main_account(main_account)
        .await
        .expect("db")
        .expect("enterprise");
    let (user, _) = server
        .store
        .user_by_login(agent)
        .await
        .expect("db")
        .expect("agent");
    let id = uuid::Uuid::new_v4().to_string();
    server
        .store
        .insert_incident(&Incident {
            id: id.clone(),
            enterprise_id: enterprise.id,
            call_id: "call-1".into(),
            agent_id: Some(UserId(user.id.0)),
            agent_name: None,
            party: party.into(),
            action: "blurred".into(),
            scores: vec![0.91, 0.97],
            evidence_key: None,
            mosaic_key: None,
            created_at: at,
            review: "pending".into(),
            review_note: None,
            reviewed_by: None,
            reviewed_at: None,
        })
        .await
        .expect("incident stored");
    id
}

fn audit_actions(audit: &Value) -> Vec<String> {
    audit
        .as_array()
        .or_else(|| audit["entries"].as_array())
        .expect("audit entries")
        .iter()
        .filter_map(|e| e["action"].as_str().map(str::to_owned))
        .collect()
}

#[tokio::test]
async fn settings_default_on_are_validated_and_turning_them_off_is_audited() {
    let server = spawn_app().await;
    server.enterprise("4001").await;
    server.user("4001", "boss", UserRole::Admin, PASSWORD).await;
    server
        .user("4001", "alice", UserRole::Agent, PASSWORD)
        .await;
    let boss = server.login("boss", PASSWORD).await;
    let alice = server.login("alice", PASSWORD).await;
    let path = "/api/v1/enterprise/moderation-settings";

    let (status, settings) = server.get(path, Some(&boss)).await;
    assert_eq!(status, 200);
    assert_eq!(
        settings["enabled"], true,
        "screening is on unless turned off"
    );
    assert_eq!(settings["positives_to_blur"], 2);
    assert_eq!(settings["positives_to_end"], 3);
    assert_eq!(settings["warmup_interval_ms"], 1000);
    assert_eq!(settings["steady_interval_ms"], 2000);

    let mut bad = settings.clone();
    bad["threshold"] = json!(1.5);
    let (status, body) = server.put(path, Some(&boss), Some(bad)).await;
    assert_eq!(status, 422);
    assert!(body["fields"]["threshold"].is_string(), "{body}");
    let mut bad = settings.clone();
    bad["steady_interval_ms"] = json!(100);
    let (status, body) = server.put(path, Some(&boss), Some(bad)).await;
    assert_eq!(status, 422);
    assert!(body["fields"]["steady_interval_ms"].is_string(), "{body}");
    let (status, _) = server
        .put(path, Some(&boss), Some(json!({"enabled": false})))
        .await;
    assert_eq!(
        status, 422,
        "every field is required: nothing is turned off by omission"
    );
    let (_, unchanged) = server.get(path, Some(&boss)).await;
    assert_eq!(unchanged, settings, "refused changes change nothing");

    let (status, _) = server.put(path, Some(&alice), Some(settings.clone())).await;
    assert_eq!(status, 403, "agents do not set screening");

    let mut off = settings.clone();
    off["enabled"] = json!(false);
    let (status, saved) = server.put(path, Some(&boss), Some(off)).await;
    assert_eq!(status, 200);
    assert_eq!(saved["enabled"], false);
    let (_, now) = server.get(path, Some(&boss)).await;
    assert_eq!(now["enabled"], false);
    let (_, audit) = server.get("/api/v1/audit", Some(&boss)).await;
    assert!(
        audit_actions(&audit).contains(&"moderation_disabled".to_owned()),
        "{audit}"
    );
}

#[tokio::test]
async fn incidents_are_listed_filtered_and_reviewed_by_their_enterprise_only() {
    let server = spawn_app().await;
    for e in ["4001", "4002"] {
        server.enterprise(e).await;
    }
    server.user("4001", "boss", UserRole::Admin, PASSWORD).await;
    server
        .user("4001", "alice", UserRole::Agent, PASSWORD)
        .await;
    server.user("4001", "bob", UserRole::Agent, PASSWORD).await;
    server
        .user("4002", "rival", UserRole::Admin, PASSWORD)
        .await;
    let boss = server.login("boss", PASSWORD).await;
    let alice = server.login("alice", PASSWORD).await;
    let rival = server.login("rival", PASSWORD).await;
    let day = 86_400_000;
    let early = incident(&server, "4001", "alice", 10 * day, "customer").await;
    let late = incident(&server, "4001", "bob", 20 * day, "agent").await;

    let (status, all) = server
        .get("/api/v1/moderation/incidents", Some(&boss))
        .await;
    assert_eq!(status, 200);
    let ids: Vec<&str> = all
        .as_array()
        .expect("test value")
        .iter()
        .map(|i| i["id"].as_str().expect("test value"))
        .collect();
    assert_eq!(ids, [late.as_str(), early.as_str()], "newest first");
    assert_eq!(all[1]["party"], "customer");
    assert_eq!(all[1]["agent_name"], "alice 测试");
    assert_eq!(all[1]["review"], "pending");
    assert_eq!(all[1]["evidence"], false);

    let from = format!(
        "/api/v1/moderation/incidents?from={}&to={}",
        15 * day,
        25 * day
    );
    let (_, window) = server.get(&from, Some(&boss)).await;
    assert_eq!(window.as_array().expect("test value").len(), 1);
    assert_eq!(window[0]["id"], late.as_str());
    let alice_id = all[1]["agent_id"].as_str().expect("test value");
    let (_, hers) = server
        .get(
            &format!("/api/v1/moderation/incidents?agent={alice_id}"),
            Some(&boss),
        )
        .await;
    assert_eq!(hers.as_array().expect("test value").len(), 1);
    assert_eq!(hers[0]["id"], early.as_str());
    let (status, _) = server
        .get("/api/v1/moderation/incidents?result=maybe", Some(&boss))
        .await;
    assert_eq!(status, 422);

    let review = format!("/api/v1/moderation/incidents/{early}/review");
    let (status, reviewed) = server
        .post(
            &review,
            Some(&boss),
            Some(json!({"decision": "dismissed", "note": " 测试画面 "})),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(reviewed["review"], "dismissed");
    assert_eq!(reviewed["review_note"], "测试画面");
    assert!(reviewed["reviewed_at"].is_i64());
    let (status, _) = server
        .post(&review, Some(&boss), Some(json!({"decision": "whatever"})))
        .await;
    assert_eq!(status, 422);
    let (_, dismissed) = server
        .get("/api/v1/moderation/incidents?result=dismissed", Some(&boss))
        .await;
    assert_eq!(dismissed.as_array().expect("test value").len(), 1);
    let (_, audit) = server.get("/api/v1/audit", Some(&boss)).await;
    assert!(audit_actions(&audit).contains(&"moderation_incident_dismissed".to_owned()));

    // Agents see nothing of it; another enterprise's admin finds nothing.
    for path in [
        "/api/v1/moderation/incidents".to_owned(),
        format!("/api/v1/moderation/incidents/{early}/mosaic"),
    ] {
        let (status, _) = server.get(&path, Some(&alice)).await;
        assert_eq!(status, 403, "{path}");
    }
    let (status, _) = server
        .post(
            &format!("/api/v1/moderation/incidents/{early}/reveal"),
            Some(&alice),
            None,
        )
        .await;
    assert_eq!(status, 403);
    let (_, theirs) = server
        .get("/api/v1/moderation/incidents", Some(&rival))
        .await;
    assert_eq!(theirs, json!([]));
    let (status, _) = server
        .get(
            &format!("/api/v1/moderation/incidents/{early}/mosaic"),
            Some(&rival),
        )
        .await;
    assert_eq!(status, 404);
    let (status, _) = server
        .post(
            &format!("/api/v1/moderation/incidents/{late}/reveal"),
            Some(&rival),
            None,
        )
        .await;
    assert_eq!(status, 404);
    let (status, _) = server
        .post(
            &format!("/api/v1/moderation/incidents/{late}/review"),
            Some(&rival),
            Some(json!({"decision": "confirmed"})),
        )
        .await;
    assert_eq!(status, 404);
    let (_, untouched) = server
        .get("/api/v1/moderation/incidents?result=pending", Some(&boss))
        .await;
    assert_eq!(
        untouched[0]["id"],
        late.as_str(),
        "a refused review changed nothing"
    );
}
