//! ICE servers handed to browsers with each join, and short-lived TURN credentials in
//! the "TURN REST API" style coturn checks with `use-auth-secret`: the username is
//! `expiry:id` (Unix seconds), the password base64(HMAC-SHA1(secret, username)). No
//! state is shared with the TURN server beyond the secret, and a leaked credential dies
//! at its expiry.

use base64::Engine;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha1::Sha1;

/// `[signaling.ice]`: what browsers use to reach the SFU.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct IceConfig {
    /// STUN servers (e.g. `stun:stun.example.com:3478`); none by default.
    pub stun_urls: Vec<String>,
    /// TURN servers, e.g. `turn:turn.example.com:3478?transport=udp` and
    /// `turn:turn.example.com:3478?transport=tcp`. Used only with `turn_secret`.
    pub turn_urls: Vec<String>,
    /// coturn's `static-auth-secret`. Empty: no TURN.
    pub turn_secret: String,
    /// How long a TURN credential is valid.
    pub turn_credential_ttl_secs: u64,
    /// Browsers use relayed candidates only (all media through TURN).
    pub force_relay: bool,
}

impl Default for IceConfig {
    fn default() -> Self {
        Self {
            stun_urls: Vec::new(),
            turn_urls: Vec::new(),
            turn_secret: String::new(),
            turn_credential_ttl_secs: 600,
            force_relay: false,
        }
    }
}

pub use kefu_proto::signaling::{IceServer, IceTransportPolicy};

/// TURN REST credentials for `id`, valid until `now + ttl` (Unix seconds).
pub fn rest_credentials(secret: &str, id: &str, now: u64, ttl: u64) -> (String, String) {
    let username = format!("{}:{id}", now.saturating_add(ttl));
    let password = rest_password(secret, &username);
    (username, password)
}

/// The password coturn expects for `username` under `secret`.
pub fn rest_password(secret: &str, username: &str) -> String {
    // HMAC takes a key of any length; new_from_slice cannot fail for it.
    let mut mac = match Hmac::<Sha1>::new_from_slice(secret.as_bytes()) {
        Ok(mac) => mac,
        Err(_) => unreachable!("HMAC accepts keys of every length"),
    };
    mac.update(username.as_bytes());
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

impl IceConfig {
    /// The ICE servers for participant `id` joining at `now` (Unix seconds).
    pub fn servers_for(&self, id: &str, now: u64) -> Vec<IceServer> {
        let mut servers = Vec::new();
        if !self.stun_urls.is_empty() {
            servers.push(IceServer {
                urls: self.stun_urls.clone(),
                username: None,
                credential: None,
            });
        }
        if !self.turn_urls.is_empty() && !self.turn_secret.is_empty() {
            let (username, credential) =
                rest_credentials(&self.turn_secret, id, now, self.turn_credential_ttl_secs);
            servers.push(IceServer {
                urls: self.turn_urls.clone(),
                username: Some(username),
                credential: Some(credential),
            });
        }
        servers
    }

    pub fn transport_policy(&self) -> IceTransportPolicy {
        if self.force_relay {
            IceTransportPolicy::Relay
        } else {
            IceTransportPolicy::All
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_follow_the_turn_rest_scheme() {
        let (user, pass) = rest_credentials("s3cret", "agent-7", 1_700_000_000, 600);
        assert_eq!(user, "1700000600:agent-7");
        // The value coturn computes: base64(HMAC-SHA1("s3cret", "1700000600:agent-7")),
        // checked against an independent implementation (Python's hmac module).
        assert_eq!(pass, "G+LKwihAvs3y5BNpxHTsC8IcD5U=");
        assert_ne!(rest_password("other", &user), pass);
    }

    #[test]
    fn servers_only_with_a_secret_and_urls() {
        let mut ice = IceConfig::default();
        assert!(ice.servers_for("p", 0).is_empty());
        ice.turn_urls = vec!["turn:127.0.0.1:3478?transport=udp".into()];
        assert!(ice.servers_for("p", 0).is_empty(), "no secret, no TURN");
        ice.turn_secret = "x".into();
        ice.stun_urls = vec!["stun:127.0.0.1:3478".into()];
        let servers = ice.servers_for("p", 100);
        assert_eq!(servers.len(), 2);
        assert_eq!(servers[0].username, None);
        assert_eq!(servers[1].username.as_deref(), Some("700:p"));
        assert_eq!(ice.transport_policy(), IceTransportPolicy::All);
        ice.force_relay = true;
        assert_eq!(ice.transport_policy(), IceTransportPolicy::Relay);
    }
}
