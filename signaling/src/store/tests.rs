//! Store behaviour, on every backend available (see `test_support`).

use super::test_support::fresh_stores;
use super::*;
use crate::accounts::store::{NewUser, SessionRow};
use crate::accounts::{AgentStatus, Enterprise, UserRole};

const T0: i64 = 1_764_000_000_000;

fn agent(e: &Enterprise, login: &str) -> NewUser {
    NewUser {
        enterprise_id: e.id.clone(),
        login: login.into(),
        role: UserRole::Agent,
        real_name: "王小明".into(),
        id_number_enc: Some("ciphertext".into()),
        password_hash: "$argon2id$fake".into(),
        capacity: 2,
    }
}

#[tokio::test]
async fn enterprises_round_trip_and_main_accounts_are_unique() {
    for (store, _dir) in fresh_stores().await {
        let e = Enterprise::new("Acme", "4001234567", T0);
        store.create_enterprise(&e).await.expect("create");
        assert_eq!(store.enterprise(&e.id).await.expect("get"), Some(e.clone()));
        assert_eq!(
            store
                .enterprise_by_main_account("4001234567")
                .await
                .expect("get")
                .map(|x| x.id),
            Some(e.id.clone())
        );
        let dup = Enterprise::new("Other", "4001234567", T0);
        let err = store.create_enterprise(&dup).await.expect_err("duplicate");
        assert!(
            matches!(err, StoreError::Conflict(_)),
            "{err:?} on {:?}",
            store.backend()
        );
        assert_eq!(store.count_enterprises().await.expect("count"), 1);
    }
}

#[tokio::test]
async fn users_round_trip_with_their_password_hash() {
    for (store, _dir) in fresh_stores().await {
        let e = Enterprise::new("Acme", "400", T0);
        store.create_enterprise(&e).await.expect("enterprise");
        let user = store
            .create_user(&agent(&e, "alice"), T0)
            .await
            .expect("user");
        assert!(
            !user.video_enabled,
            "video service starts off until an admin grants it"
        );
        assert_eq!(user.status, AgentStatus::Offline);
        assert_eq!(store.user(&user.id).await.expect("get"), Some(user.clone()));
        let (found, hash) = store
            .user_by_login("alice")
            .await
            .expect("get")
            .expect("exists");
        assert_eq!(found, user);
        assert_eq!(hash, "$argon2id$fake");
        assert!(store.user_by_login("bob").await.expect("get").is_none());

        let err = store
            .create_user(&agent(&e, "alice"), T0)
            .await
            .expect_err("dup login");
        assert!(matches!(err, StoreError::Conflict("login")), "{err:?}");

        assert!(
            store
                .set_password_hash(&user.id, "$argon2id$new")
                .await
                .expect("set")
        );
        let (_, hash) = store
            .user_by_login("alice")
            .await
            .expect("get")
            .expect("exists");
        assert_eq!(hash, "$argon2id$new");
        assert!(
            store
                .set_video_enabled(&user.id, true)
                .await
                .expect("grant")
        );
        assert!(
            store
                .user(&user.id)
                .await
                .expect("get")
                .expect("exists")
                .video_enabled
        );
    }
}

#[tokio::test]
async fn coming_online_starts_the_idle_clock_and_staying_online_keeps_it() {
    for (store, _dir) in fresh_stores().await {
        let e = Enterprise::new("Acme", "400", T0);
        store.create_enterprise(&e).await.expect("enterprise");
        let user = store
            .create_user(&agent(&e, "alice"), T0)
            .await
            .expect("user");
        store
            .set_presence(&user.id, AgentStatus::Online, true, T0 + 10)
            .await
            .expect("online");
        let u = store.user(&user.id).await.expect("get").expect("exists");
        assert_eq!(
            (u.status, u.accepting, u.idle_since),
            (AgentStatus::Online, true, T0 + 10)
        );
        store
            .set_presence(&user.id, AgentStatus::Online, false, T0 + 20)
            .await
            .expect("pause");
        let u = store.user(&user.id).await.expect("get").expect("exists");
        assert_eq!(
            (u.accepting, u.idle_since),
            (false, T0 + 10),
            "still online: same idle start"
        );
    }
}

#[tokio::test]
async fn groups_hold_their_agents_once() {
    for (store, _dir) in fresh_stores().await {
        let e = Enterprise::new("Acme", "400", T0);
        store.create_enterprise(&e).await.expect("enterprise");
        let g = store.create_group(&e.id, "售后", T0).await.expect("group");
        assert!(matches!(
            store.create_group(&e.id, "售后", T0).await,
            Err(StoreError::Conflict(_))
        ));
        let a = store
            .create_user(&agent(&e, "alice"), T0)
            .await
            .expect("alice");
        let b = store.create_user(&agent(&e, "bob"), T0).await.expect("bob");
        store.add_to_group(&g.id, &b.id).await.expect("add bob");
        store.add_to_group(&g.id, &a.id).await.expect("add alice");
        assert!(matches!(
            store.add_to_group(&g.id, &a.id).await,
            Err(StoreError::Conflict(_))
        ));
        let members: Vec<_> = store
            .group_members(&g.id)
            .await
            .expect("members")
            .into_iter()
            .map(|u| u.login)
            .collect();
        assert_eq!(members, ["alice", "bob"]);
        assert_eq!(
            store.group_by_name(&e.id, "售后").await.expect("get"),
            Some(g)
        );
    }
}

#[tokio::test]
async fn sessions_expire_and_are_revocable() {
    for (store, _dir) in fresh_stores().await {
        let e = Enterprise::new("Acme", "400", T0);
        store.create_enterprise(&e).await.expect("enterprise");
        let user = store
            .create_user(&agent(&e, "alice"), T0)
            .await
            .expect("user");
        let session = SessionRow {
            token_hash: "h1".into(),
            user_id: user.id.clone(),
            created_at: T0,
            expires_at: T0 + 1000,
        };
        store.create_session(&session).await.expect("session");
        assert_eq!(
            store
                .session_user("h1", T0 + 1)
                .await
                .expect("get")
                .map(|(u, started)| (u.id, started)),
            Some((user.id.clone(), T0)),
            "the session's start comes along (the verification gate counts from it)"
        );
        assert_eq!(
            store.session_user("h1", T0 + 1000).await.expect("get"),
            None,
            "expired"
        );
        assert_eq!(store.session_user("nope", T0 + 1).await.expect("get"), None);
        assert!(store.revoke_session("h1", T0 + 2).await.expect("revoke"));
        assert!(
            !store
                .revoke_session("h1", T0 + 3)
                .await
                .expect("revoke twice")
        );
        assert_eq!(
            store.session_user("h1", T0 + 4).await.expect("get"),
            None,
            "revoked"
        );
    }
}

mod calls {
    use super::*;
    use crate::accounts::{CallId, UserId, VerificationId};
    use crate::calls::Call;
    use crate::calls::machine::{CallEvent, CallKind, CallState, Direction, Party};
    use crate::verification::{VerificationFilter, VerificationRecord};

    async fn seeded(store: &Store) -> (Enterprise, UserId) {
        let e = Enterprise::new("Acme", "400", T0);
        store.create_enterprise(&e).await.expect("enterprise");
        let user = store
            .create_user(&agent(&e, "alice"), T0)
            .await
            .expect("user");
        (e, user.id)
    }

    fn outgoing(e: &Enterprise, agent: &UserId, at: i64) -> Call {
        Call {
            id: CallId::generate(),
            enterprise_id: e.id.clone(),
            direction: Direction::AgentInitiated,
            kind: CallKind::Video,
            state: CallState::Inviting,
            agent_id: Some(agent.clone()),
            customer_id: None,
            group_id: None,
            invite_code: Some(format!("code-{at}")),
            created_at: at,
            state_since: at,
            ring_deadline: Some(at + 60_000),
            connected_at: None,
            ended_at: None,
        }
    }

    #[tokio::test]
    async fn transitions_are_persisted_in_order_and_stale_writers_lose() {
        for (store, _dir) in fresh_stores().await {
            let (e, alice) = seeded(&store).await;
            let call = outgoing(&e, &alice, T0);
            store
                .create_call(&call, "agent_call")
                .await
                .expect("create");
            assert_eq!(store.call(&call.id).await.expect("get"), Some(call.clone()));
            assert_eq!(
                store
                    .call_by_invite("code-".to_owned().as_str())
                    .await
                    .expect("get"),
                None
            );
            assert_eq!(
                store
                    .call_by_invite(&format!("code-{T0}"))
                    .await
                    .expect("get")
                    .map(|c| c.id),
                Some(call.id.clone())
            );

            let mut ringing = call.clone();
            ringing.state = call
                .state
                .next(call.direction, &CallEvent::CustomerOpened)
                .expect("edge");
            ringing.state_since = T0 + 5;
            store
                .save_transition(&call, &ringing, "customer_opened", T0 + 5)
                .await
                .expect("save");

            // A second writer that still believes the call is inviting loses.
            let mut stale = call.clone();
            stale.state = CallState::Cancelled { by: Party::Agent };
            let err = store
                .save_transition(&call, &stale, "cancel", T0 + 6)
                .await
                .expect_err("stale");
            assert!(matches!(err, StoreError::Conflict(_)), "{err:?}");

            let events = store.call_events(&call.id).await.expect("events");
            let steps: Vec<_> = events
                .iter()
                .map(|e| (e.seq, e.from_state.as_str(), e.to_state.as_str()))
                .collect();
            assert_eq!(steps, [(0, "new", "inviting"), (1, "inviting", "ringing")]);
            assert_eq!(events[1].at, T0 + 5);
            assert_eq!(store.live_calls_of(&alice).await.expect("live"), 1);
        }
    }

    #[tokio::test]
    async fn outgoing_calls_are_counted_since_a_time() {
        for (store, _dir) in fresh_stores().await {
            let (e, alice) = seeded(&store).await;
            for at in [T0 + 10, T0 + 20, T0 + 30] {
                store
                    .create_call(&outgoing(&e, &alice, at), "agent_call")
                    .await
                    .expect("create");
            }
            assert_eq!(
                store.outgoing_calls_since(&alice, T0).await.expect("count"),
                3
            );
            assert_eq!(
                store
                    .outgoing_calls_since(&alice, T0 + 10)
                    .await
                    .expect("count"),
                2
            );
            assert_eq!(
                store
                    .outgoing_calls_since(&alice, T0 + 30)
                    .await
                    .expect("count"),
                0
            );
        }
    }

    #[tokio::test]
    async fn verification_records_filter_by_agent_time_and_result() {
        for (store, _dir) in fresh_stores().await {
            let (e, alice) = seeded(&store).await;
            let bob = store
                .create_user(&agent(&e, "bob"), T0)
                .await
                .expect("bob")
                .id;
            let record = |agent: &UserId, at: i64, passed: bool| VerificationRecord {
                id: VerificationId::generate(),
                enterprise_id: e.id.clone(),
                agent_id: agent.clone(),
                agent_name: "name".into(),
                id_number_enc: Some("enc".into()),
                passed,
                checked_at: at,
                passed_at: passed.then_some(at),
                failure_reason: (!passed).then(|| "liveness_not_shown".to_owned()),
                failure_detail: (!passed).then(|| "no_motion".to_owned()),
                channel: "workbench".into(),
            };
            for r in [
                record(&alice, T0 + 1, false),
                record(&alice, T0 + 2, true),
                record(&bob, T0 + 3, true),
            ] {
                store.insert_verification(&r).await.expect("insert");
            }
            assert_eq!(
                store.last_passed_verification(&alice).await.expect("last"),
                Some(T0 + 2)
            );
            let all = store
                .verifications(&e.id, &VerificationFilter::default(), 100)
                .await
                .expect("list");
            assert_eq!(
                all.iter().map(|r| r.checked_at).collect::<Vec<_>>(),
                [T0 + 3, T0 + 2, T0 + 1]
            );
            let f = VerificationFilter {
                agent_id: Some(alice.clone()),
                passed: Some(false),
                ..Default::default()
            };
            let failed = store.verifications(&e.id, &f, 100).await.expect("list");
            assert_eq!(failed.len(), 1);
            assert!(!failed[0].passed);
            let f = VerificationFilter {
                from: Some(T0 + 2),
                to: Some(T0 + 3),
                ..Default::default()
            };
            assert_eq!(
                store
                    .verifications(&e.id, &f, 100)
                    .await
                    .expect("list")
                    .len(),
                1
            );
            let other = Enterprise::new("Other", "401", T0);
            store.create_enterprise(&other).await.expect("other");
            assert!(
                store
                    .verifications(&other.id, &VerificationFilter::default(), 100)
                    .await
                    .expect("list")
                    .is_empty()
            );
        }
    }
}

#[tokio::test]
async fn beauty_settings_are_kept_per_agent_and_replaced_on_save() {
    use kefu_beauty::{BeautyParams, Preset};
    for (store, _dir) in fresh_stores().await {
        let e = Enterprise::new("Acme", "400", T0);
        store.create_enterprise(&e).await.expect("enterprise");
        let user = store
            .create_user(&agent(&e, "alice"), T0)
            .await
            .expect("user");
        assert_eq!(store.beauty_settings(&user.id).await.expect("get"), None);
        store
            .save_beauty_settings(&user.id, Preset::Fair, &Preset::Fair.params(), T0)
            .await
            .expect("save");
        let custom = BeautyParams {
            smoothing: 0.9,
            ..Preset::Smooth.params()
        };
        store
            .save_beauty_settings(&user.id, Preset::Smooth, &custom, T0 + 1)
            .await
            .expect("replace");
        assert_eq!(
            store.beauty_settings(&user.id).await.expect("get"),
            Some((Preset::Smooth, custom))
        );
    }
}

mod retention {
    use super::*;
    use crate::accounts::{UserId, VerificationId};
    use crate::retention::RetentionSettings;
    use crate::verification::VerificationRecord;
    use crate::verification::references::StoredReference;

    fn reference(e: &Enterprise, agent: &UserId, at: i64) -> StoredReference {
        StoredReference {
            agent_id: agent.clone(),
            enterprise_id: e.id.clone(),
            templates_enc: "sealed".into(),
            photo_count: 1,
            photo_keys: vec![format!("enrollment/{at}")],
            enrolled_at: at,
            enrolled_by: agent.clone(),
        }
    }

    fn record(e: &Enterprise, agent: &UserId, at: i64) -> VerificationRecord {
        VerificationRecord {
            id: VerificationId(format!("v{at}")),
            enterprise_id: e.id.clone(),
            agent_id: agent.clone(),
            agent_name: "王小明".into(),
            id_number_enc: None,
            passed: true,
            checked_at: at,
            passed_at: Some(at),
            failure_reason: None,
            failure_detail: None,
            channel: "workbench".into(),
        }
    }

    #[tokio::test]
    async fn settings_round_trip_and_expired_items_page_past_the_ones_kept() {
        for (store, _dir) in fresh_stores().await {
            let e = Enterprise::new("Acme", "400", T0);
            store.create_enterprise(&e).await.expect("enterprise");
            let admin = UserId("admin".into());
            assert!(
                store
                    .retention_settings(&e.id)
                    .await
                    .expect("get")
                    .is_unset()
            );
            let set = RetentionSettings {
                recordings_days: Some(30),
                verification_days: None,
                moderation_days: Some(90),
                face_reference_days: Some(365),
            };
            store
                .set_retention_settings(&e.id, &set, &admin, T0)
                .await
                .expect("set");
            assert_eq!(store.retention_settings(&e.id).await.expect("get"), set);
            assert_eq!(
                store.all_retention_settings().await.expect("all"),
                vec![(e.id.clone(), set)]
            );

            // Three agents enrolled at T0, T0+1, T0+2: the cutoff T0+2 takes two; the
            // second page (one stepped over) holds the other.
            let mut agents = Vec::new();
            for (n, login) in ["a1", "a2", "a3"].iter().enumerate() {
                let u = store
                    .create_user(&agent(&e, login), T0)
                    .await
                    .expect("user");
                let written = store
                    .put_face_reference(&reference(&e, &u.id, T0 + n as i64))
                    .await
                    .expect("put");
                assert_eq!(written, Some(None), "a first enrolment");
                agents.push(u.id);
            }
            let expired = store
                .expired_face_references(&e.id, T0 + 2, 0)
                .await
                .expect("list");
            let ids: Vec<_> = expired.iter().map(|x| x.id.clone()).collect();
            assert_eq!(ids, [agents[0].0.clone(), agents[1].0.clone()]);
            assert_eq!(expired[0].objects, [format!("enrollment/{T0}")]);
            let page = store
                .expired_face_references(&e.id, T0 + 2, 1)
                .await
                .expect("list");
            assert_eq!(page.len(), 1);
            // A re-enrolment after the cutoff is kept.
            assert!(
                !store
                    .delete_face_reference_before(agents[2].as_str(), T0 + 2)
                    .await
                    .expect("delete")
            );
            assert!(
                store
                    .delete_face_reference_before(agents[0].as_str(), T0 + 2)
                    .await
                    .expect("delete")
            );
            assert!(
                store
                    .face_reference(&agents[0])
                    .await
                    .expect("get")
                    .is_none()
            );

            for at in [T0, T0 + 10] {
                store
                    .insert_verification(&record(&e, &agents[1], at))
                    .await
                    .expect("record");
            }
            assert_eq!(
                store
                    .delete_verifications_before(&e.id, T0 + 5)
                    .await
                    .expect("delete"),
                1
            );
        }
    }

    #[tokio::test]
    async fn a_removed_user_is_gone_everywhere_but_keeps_a_name_and_gets_no_new_reference() {
        for (store, _dir) in fresh_stores().await {
            let e = Enterprise::new("Acme", "400", T0);
            store.create_enterprise(&e).await.expect("enterprise");
            let u = store
                .create_user(&agent(&e, "alice"), T0)
                .await
                .expect("user");
            store
                .put_face_reference(&reference(&e, &u.id, T0))
                .await
                .expect("put");
            store
                .create_session(&SessionRow {
                    token_hash: "h".into(),
                    user_id: u.id.clone(),
                    created_at: T0,
                    expires_at: T0 + 3_600_000,
                })
                .await
                .expect("session");

            let photos = store.remove_user(&u.id, T0 + 1).await.expect("remove");
            assert_eq!(photos, Some(vec![format!("enrollment/{T0}")]));
            assert_eq!(store.remove_user(&u.id, T0 + 2).await.expect("again"), None);
            assert!(store.user(&u.id).await.expect("get").is_none());
            assert!(store.user_by_login("alice").await.expect("get").is_none());
            assert!(store.users_of(&e.id).await.expect("list").is_empty());
            assert!(
                store
                    .session_user("h", T0 + 2)
                    .await
                    .expect("session")
                    .is_none()
            );
            assert!(store.face_reference(&u.id).await.expect("get").is_none());
            assert!(
                !store
                    .set_presence(&u.id, AgentStatus::Online, true, T0 + 3)
                    .await
                    .expect("presence"),
                "a removed agent cannot come online"
            );
            // The name stays for records; the login is free again.
            assert_eq!(
                store.user_names_of(&e.id).await.expect("names"),
                vec![(u.id.clone(), "王小明".into())]
            );
            store
                .create_user(&agent(&e, "alice"), T0 + 4)
                .await
                .expect("the login is free");
            // An enrolment racing the removal writes nothing.
            assert_eq!(
                store
                    .put_face_reference(&reference(&e, &u.id, T0 + 5))
                    .await
                    .expect("put"),
                None
            );
            assert!(store.face_reference(&u.id).await.expect("get").is_none());
        }
    }
}
