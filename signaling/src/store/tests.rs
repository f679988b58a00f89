//! Store behaviour, on every backend available (see `test_support`).

use super::test_support::fresh_stores;
use super::*;
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
                .map(|u| u.id),
            Some(user.id.clone())
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
