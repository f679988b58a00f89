//! Operator actions (the `kefu admin` CLI, and tests): validated, then stored.

use crate::accounts::password::{generate_password, hash_password, validate_password};
use crate::accounts::secrets::{DataKey, validate_id_number};
use crate::accounts::store::NewUser;
use crate::accounts::{Enterprise, Group, User, UserRole, validate_login};
use crate::store::{Store, StoreError};
use kefu_proto::Pii;

/// Why an operator action was refused.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    #[error("{field}: {message}")]
    Invalid {
        field: &'static str,
        message: String,
    },
    #[error("no enterprise with main account {0}")]
    UnknownEnterprise(String),
    #[error("no user with login {0}")]
    UnknownUser(String),
    #[error("no group named {0}")]
    UnknownGroup(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

fn invalid(field: &'static str, message: impl Into<String>) -> AdminError {
    AdminError::Invalid {
        field,
        message: message.into(),
    }
}

/// A new user's details. `password: None` generates one (returned once).
#[derive(Debug, Clone)]
pub struct UserSpec {
    pub main_account: String,
    pub login: String,
    pub role: UserRole,
    pub real_name: String,
    pub id_number: Option<Pii<String>>,
    pub password: Option<String>,
    pub capacity: u32,
}

pub async fn create_enterprise(
    store: &Store,
    name: &str,
    main_account: &str,
    now_ms: i64,
) -> Result<Enterprise, AdminError> {
    if name.trim().is_empty() || name.chars().count() > 100 {
        return Err(invalid("name", "1–100 characters"));
    }
    if main_account.is_empty()
        || main_account.len() > 32
        || !main_account.chars().all(|c| c.is_ascii_digit())
    {
        return Err(invalid("main_account", "1–32 digits"));
    }
    let enterprise = Enterprise::new(name.trim(), main_account, now_ms);
    store.create_enterprise(&enterprise).await?;
    Ok(enterprise)
}

/// Creates an agent or admin; returns the user and the password if one was generated.
pub async fn create_user(
    store: &Store,
    key: &DataKey,
    spec: &UserSpec,
    now_ms: i64,
) -> Result<(User, Option<String>), AdminError> {
    validate_login(&spec.login).map_err(|m| invalid("login", m))?;
    if spec.real_name.trim().is_empty() || spec.real_name.chars().count() > 50 {
        return Err(invalid("real_name", "1–50 characters"));
    }
    if let Some(id) = &spec.id_number {
        validate_id_number(id.expose()).map_err(|m| invalid("id_number", m))?;
    }
    if spec.role == UserRole::Agent && !(1..=10).contains(&spec.capacity) {
        return Err(invalid("capacity", "an agent takes 1–10 concurrent calls"));
    }
    let enterprise = store
        .enterprise_by_main_account(&spec.main_account)
        .await?
        .ok_or_else(|| AdminError::UnknownEnterprise(spec.main_account.clone()))?;
    let (password, generated) = match &spec.password {
        Some(p) => {
            validate_password(p).map_err(|m| invalid("password", m))?;
            (p.clone(), None)
        }
        None => {
            let p = generate_password();
            (p.clone(), Some(p))
        }
    };
    let password_hash = hash_password(&password).map_err(|m| invalid("password", m))?;
    let user = store
        .create_user(
            &NewUser {
                enterprise_id: enterprise.id,
                login: spec.login.clone(),
                role: spec.role,
                real_name: spec.real_name.trim().to_owned(),
                id_number_enc: spec.id_number.as_ref().map(|id| key.encrypt(id.expose())),
                password_hash,
                capacity: if spec.role == UserRole::Agent {
                    spec.capacity
                } else {
                    0
                },
            },
            now_ms,
        )
        .await?;
    Ok((user, generated))
}

/// The enterprise with this main account, or a clear error.
async fn enterprise_of(
    store: &Store,
    main_account: &str,
) -> Result<crate::accounts::Enterprise, AdminError> {
    store
        .enterprise_by_main_account(main_account)
        .await?
        .ok_or_else(|| AdminError::UnknownEnterprise(main_account.to_owned()))
}

/// Turns call recording on or off for a whole enterprise (on by default).
pub async fn set_recording(
    store: &Store,
    main_account: &str,
    enabled: bool,
) -> Result<(), AdminError> {
    let enterprise = enterprise_of(store, main_account).await?;
    store.set_recording_enabled(&enterprise.id, enabled).await?;
    Ok(())
}

/// How long a customer's request may wait in all (queue and rings) before it times
/// out; at least one second.
pub async fn set_request_wait(
    store: &Store,
    main_account: &str,
    secs: u32,
) -> Result<(), AdminError> {
    let enterprise = enterprise_of(store, main_account).await?;
    store.set_request_wait(&enterprise.id, secs.max(1)).await?;
    Ok(())
}

pub async fn create_group(
    store: &Store,
    main_account: &str,
    name: &str,
    now_ms: i64,
) -> Result<Group, AdminError> {
    if name.trim().is_empty() || name.chars().count() > 50 {
        return Err(invalid("name", "1–50 characters"));
    }
    let enterprise = enterprise_of(store, main_account).await?;
    Ok(store
        .create_group(&enterprise.id, name.trim(), now_ms)
        .await?)
}

/// Adds an agent to a group of the agent's own enterprise.
pub async fn add_to_group(store: &Store, login: &str, group: &str) -> Result<(), AdminError> {
    let (user, _) = store
        .user_by_login(login)
        .await?
        .ok_or_else(|| AdminError::UnknownUser(login.to_owned()))?;
    if user.role != UserRole::Agent {
        return Err(invalid("login", "only agents join reception groups"));
    }
    let group = store
        .group_by_name(&user.enterprise_id, group)
        .await?
        .ok_or_else(|| AdminError::UnknownGroup(group.to_owned()))?;
    Ok(store.add_to_group(&group.id, &user.id).await?)
}

/// Sets a new password (generated when `None`) and ends the user's sessions.
pub async fn set_password(
    store: &Store,
    login: &str,
    password: Option<String>,
    now_ms: i64,
) -> Result<Option<String>, AdminError> {
    let (user, _) = store
        .user_by_login(login)
        .await?
        .ok_or_else(|| AdminError::UnknownUser(login.to_owned()))?;
    let (password, generated) = match password {
        Some(p) => {
            validate_password(&p).map_err(|m| invalid("password", m))?;
            (p, None)
        }
        None => {
            let p = generate_password();
            (p.clone(), Some(p))
        }
    };
    let hash = hash_password(&password).map_err(|m| invalid("password", m))?;
    store.set_password_hash(&user.id, &hash).await?;
    store.revoke_sessions_of(&user.id, now_ms).await?;
    Ok(generated)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::accounts::password::verify_password;
    use crate::store::test_support::fresh_stores;

    const T0: i64 = 1_764_000_000_000;

    fn key() -> DataKey {
        DataKey::from_bytes(&[1u8; 32])
    }

    fn alice() -> UserSpec {
        UserSpec {
            main_account: "4001".into(),
            login: "alice".into(),
            role: UserRole::Agent,
            real_name: "李丽".into(),
            id_number: Some(Pii::new("110101199003071234".to_owned())),
            password: None,
            capacity: 2,
        }
    }

    #[tokio::test]
    async fn operators_build_an_enterprise_with_agents_and_groups() {
        for (store, _dir) in fresh_stores().await {
            create_enterprise(&store, "Acme", "4001", T0)
                .await
                .expect("enterprise");
            let (user, generated) = create_user(&store, &key(), &alice(), T0)
                .await
                .expect("agent");
            let password = generated.expect("a password is generated when none is given");
            let (_, hash) = store
                .user_by_login("alice")
                .await
                .expect("get")
                .expect("exists");
            assert!(verify_password(&password, &hash));
            let enc = user.id_number_enc.expect("stored encrypted");
            assert!(!enc.contains("1234"));
            assert_eq!(key().decrypt(&enc).as_deref(), Ok("110101199003071234"));

            create_group(&store, "4001", "售前", T0)
                .await
                .expect("group");
            add_to_group(&store, "alice", "售前").await.expect("member");
            assert!(matches!(
                add_to_group(&store, "alice", "nope").await,
                Err(AdminError::UnknownGroup(_))
            ));

            let new = set_password(&store, "alice", Some("a much better pass".into()), T0)
                .await
                .expect("reset");
            assert!(new.is_none());
            let (_, hash) = store
                .user_by_login("alice")
                .await
                .expect("get")
                .expect("exists");
            assert!(verify_password("a much better pass", &hash));
        }
    }

    #[tokio::test]
    async fn bad_operator_input_is_refused_with_the_field_named() {
        for (store, _dir) in fresh_stores().await {
            let err = create_enterprise(&store, "Acme", "40-01", T0)
                .await
                .expect_err("digits");
            assert!(matches!(
                err,
                AdminError::Invalid {
                    field: "main_account",
                    ..
                }
            ));
            create_enterprise(&store, "Acme", "4001", T0)
                .await
                .expect("enterprise");
            for (spec, field) in [
                (
                    UserSpec {
                        login: "a b".into(),
                        ..alice()
                    },
                    "login",
                ),
                (
                    UserSpec {
                        id_number: Some(Pii::new("123".to_owned())),
                        ..alice()
                    },
                    "id_number",
                ),
                (
                    UserSpec {
                        password: Some("short".into()),
                        ..alice()
                    },
                    "password",
                ),
                (
                    UserSpec {
                        capacity: 0,
                        ..alice()
                    },
                    "capacity",
                ),
            ] {
                match create_user(&store, &key(), &spec, T0).await {
                    Err(AdminError::Invalid { field: f, .. }) => assert_eq!(f, field),
                    other => panic!("{field}: {other:?}"),
                }
            }
            let err = create_user(
                &store,
                &key(),
                &UserSpec {
                    main_account: "9".into(),
                    ..alice()
                },
                T0,
            )
            .await
            .expect_err("unknown enterprise");
            assert!(matches!(err, AdminError::UnknownEnterprise(_)));
        }
    }
}
