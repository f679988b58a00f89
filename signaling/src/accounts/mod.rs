//! Accounts and tenancy: enterprises, agents and admins, reception groups, sessions.

pub mod admin;
pub mod bootstrap;
pub mod login;
pub mod password;
pub mod removal;
pub mod secrets;
pub mod session;
pub mod store;
pub mod users;
pub mod view;

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, utoipa::ToSchema)]
        #[serde(transparent)]
        pub struct $name(pub String);

        impl $name {
            /// A fresh random id.
            pub fn generate() -> Self {
                Self(uuid::Uuid::new_v4().to_string())
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

id_type!(
    /// An enterprise (tenant).
    EnterpriseId
);
id_type!(
    /// An agent or an admin.
    UserId
);
id_type!(
    /// A reception group of agents.
    GroupId
);
id_type!(
    /// A customer (created from an invite or the service page).
    CustomerId
);
id_type!(
    /// A customer-service call.
    CallId
);
id_type!(
    /// A face-verification record.
    VerificationId
);

/// What a user account may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum UserRole {
    Agent,
    Admin,
}

/// Whether an agent can take calls right now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum AgentStatus {
    Online,
    Away,
    Offline,
}

macro_rules! text_enum {
    ($name:ident { $($variant:ident => $text:literal),+ $(,)? }) => {
        impl $name {
            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),+ }
            }
        }

        impl FromStr for $name {
            type Err = String;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                match s {
                    $($text => Ok($name::$variant),)+
                    other => Err(format!("unknown {}: {other}", stringify!($name))),
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

text_enum!(UserRole { Agent => "agent", Admin => "admin" });
text_enum!(AgentStatus { Online => "online", Away => "away", Offline => "offline" });

/// A tenant and its settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Enterprise {
    pub id: EnterpriseId,
    pub name: String,
    /// The public number customers see.
    pub main_account: String,
    /// IANA zone used for recording names and the dashboard (default Asia/Shanghai).
    pub time_zone: String,
    /// A face verification covers this many outgoing calls (default 3).
    pub verification_period: u32,
    pub ring_timeout_secs: u32,
    /// How long a customer's request may wait in all (queue and rings) before it
    /// times out (default 300 s).
    pub request_wait_secs: u32,
    /// Requests a reception group's queue holds at most.
    pub queue_capacity: u32,
    pub recording_enabled: bool,
    pub created_at: i64,
}

impl Enterprise {
    /// A new enterprise with the product's defaults.
    pub fn new(name: &str, main_account: &str, now_ms: i64) -> Self {
        Self {
            id: EnterpriseId::generate(),
            name: name.to_owned(),
            main_account: main_account.to_owned(),
            time_zone: "Asia/Shanghai".into(),
            verification_period: 3,
            ring_timeout_secs: 60,
            request_wait_secs: 300,
            queue_capacity: 2000,
            recording_enabled: true,
            created_at: now_ms,
        }
    }
}

/// An agent or admin account (never its password hash).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub id: UserId,
    pub enterprise_id: EnterpriseId,
    pub login: String,
    pub role: UserRole,
    pub real_name: String,
    /// The ID number, encrypted (see [`secrets::DataKey`]); `None` when not recorded.
    pub id_number_enc: Option<String>,
    /// Granted by an admin: without it the agent has no call buttons and the API refuses.
    pub video_enabled: bool,
    /// Concurrent calls the agent takes at most.
    pub capacity: u32,
    pub status: AgentStatus,
    pub accepting: bool,
    pub idle_since: i64,
    pub created_at: i64,
}

/// A reception group.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Group {
    pub id: GroupId,
    pub enterprise_id: EnterpriseId,
    pub name: String,
}

/// Checks a login name: 3–64 characters of letters, digits, `.`, `_`, `-`, `@`.
pub fn validate_login(login: &str) -> Result<(), String> {
    let ok_len = (3..=64).contains(&login.chars().count());
    let ok_chars = login
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '@'));
    if ok_len && ok_chars {
        Ok(())
    } else {
        Err("3–64 characters: letters, digits, '.', '_', '-', '@'".into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_and_statuses_round_trip_as_text() {
        for role in [UserRole::Agent, UserRole::Admin] {
            assert_eq!(role.as_str().parse::<UserRole>(), Ok(role));
        }
        for status in [AgentStatus::Online, AgentStatus::Away, AgentStatus::Offline] {
            assert_eq!(status.as_str().parse::<AgentStatus>(), Ok(status));
        }
        assert!("root".parse::<UserRole>().is_err());
    }

    #[test]
    fn logins_are_validated() {
        assert!(validate_login("alice.w@acme").is_ok());
        assert!(validate_login("al").is_err());
        assert!(validate_login("alice smith").is_err());
        assert!(validate_login(&"a".repeat(65)).is_err());
        assert!(validate_login("名字").is_err());
    }
}
