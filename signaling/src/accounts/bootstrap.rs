//! First start: an empty database gets one enterprise and one admin whose random
//! password is shown once. There is never a fixed default password.

use crate::accounts::password::{generate_password, hash_password};
use crate::accounts::store::NewUser;
use crate::accounts::{Enterprise, UserRole};
use crate::config::BootstrapConfig;
use crate::store::{Store, StoreError};

/// The admin account created on first start, to print once.
#[derive(Debug, Clone)]
pub struct BootstrapCredentials {
    pub main_account: String,
    pub login: String,
    pub password: crate::accounts::secrets::Pii<String>,
}

/// Seeds an empty database; does nothing (returns `None`) when any enterprise exists.
pub async fn seed_if_empty(
    store: &Store,
    config: &BootstrapConfig,
    now_ms: i64,
) -> Result<Option<BootstrapCredentials>, StoreError> {
    if store.count_enterprises().await? > 0 {
        return Ok(None);
    }
    let enterprise = Enterprise::new(&config.enterprise_name, &config.main_account, now_ms);
    store.create_enterprise(&enterprise).await?;
    let password = generate_password();
    let password_hash = hash_password(&password).map_err(StoreError::Corrupt)?;
    store
        .create_user(
            &NewUser {
                enterprise_id: enterprise.id.clone(),
                login: config.admin_login.clone(),
                role: UserRole::Admin,
                real_name: "Administrator".into(),
                id_number_enc: None,
                password_hash,
                capacity: 0,
            },
            now_ms,
        )
        .await?;
    Ok(Some(BootstrapCredentials {
        main_account: enterprise.main_account,
        login: config.admin_login.clone(),
        password: crate::accounts::secrets::Pii(password),
    }))
}
