//! What the API shows of stored objects. Personal data is masked here, once.

use serde::{Deserialize, Serialize};

use crate::accounts::secrets::{DataKey, mask_id_number};
use crate::accounts::{AgentStatus, User, UserRole};

/// A user as the API shows it: the ID number only masked, never the password hash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct UserView {
    pub id: String,
    pub enterprise_id: String,
    pub login: String,
    pub role: UserRole,
    pub real_name: String,
    /// `110***********1234`; `null` when none is recorded or it cannot be decrypted.
    pub id_number_masked: Option<String>,
    pub video_enabled: bool,
    pub capacity: u32,
    pub status: AgentStatus,
    pub accepting: bool,
}

impl UserView {
    pub fn of(user: &User, key: &DataKey) -> Self {
        Self {
            id: user.id.to_string(),
            enterprise_id: user.enterprise_id.to_string(),
            login: user.login.clone(),
            role: user.role,
            real_name: user.real_name.clone(),
            id_number_masked: user
                .id_number_enc
                .as_deref()
                .and_then(|enc| key.decrypt(enc).ok())
                .map(|plain| mask_id_number(&plain)),
            video_enabled: user.video_enabled,
            capacity: user.capacity,
            status: user.status,
            accepting: user.accepting,
        }
    }
}
