//! Signed, expiring room tokens (JWT, HS256).
//!
//! The clock is an argument: `exp` is checked against the `now` the caller passes,
//! not by the library, so expiry is testable without sleeping.

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

/// Which side of the call the token's holder is on.
pub use kefu_proto::Side;

/// What a room token grants: `sub` may join `room` as `role` until `exp`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoomClaims {
    /// The participant's identity within the room.
    pub sub: String,
    pub room: String,
    pub role: Side,
    /// Expiry, seconds since the Unix epoch.
    pub exp: u64,
    /// Issued at, seconds since the Unix epoch.
    pub iat: u64,
}

/// Why a token was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TokenError {
    /// Bad signature, wrong algorithm, or not a token at all.
    #[error("the token is not valid")]
    Invalid,
    /// Signed by us, but past its expiry.
    #[error("the token has expired")]
    Expired,
}

/// Issues and checks room tokens with one HMAC key.
#[derive(Clone)]
pub struct TokenKeys {
    encoding: EncodingKey,
    decoding: DecodingKey,
    ttl_secs: u64,
}

impl std::fmt::Debug for TokenKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenKeys")
            .field("ttl_secs", &self.ttl_secs)
            .finish_non_exhaustive()
    }
}

impl TokenKeys {
    pub fn new(secret: &[u8], ttl_secs: u64) -> Self {
        Self {
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
            ttl_secs,
        }
    }

    /// A token for `sub` to join `room` as `role`, valid from `now` (Unix seconds).
    pub fn issue(&self, room: &str, sub: &str, role: Side, now: u64) -> String {
        let claims = RoomClaims {
            sub: sub.to_owned(),
            room: room.to_owned(),
            role,
            exp: now + self.ttl_secs,
            iat: now,
        };
        // Invariant: HS256 encoding of a plain struct cannot fail.
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
            .unwrap_or_default()
    }

    /// Checks signature and expiry at `now` (Unix seconds).
    pub fn verify(&self, token: &str, now: u64) -> Result<RoomClaims, TokenError> {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.validate_exp = false; // checked below against the caller's clock
        validation.required_spec_claims.clear();
        let data = jsonwebtoken::decode::<RoomClaims>(token, &self.decoding, &validation)
            .map_err(|_| TokenError::Invalid)?;
        if data.claims.exp <= now {
            return Err(TokenError::Expired);
        }
        Ok(data.claims)
    }
}

/// Seconds since the Unix epoch, for drivers that need "now".
pub fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &[u8] = b"0123456789abcdef0123456789abcdef";

    #[test]
    fn issued_token_verifies_with_its_claims() {
        let keys = TokenKeys::new(SECRET, 60);
        let token = keys.issue("room-1", "alice", Side::Agent, 1000);
        let claims = keys.verify(&token, 1030).expect("valid");
        assert_eq!(claims.room, "room-1");
        assert_eq!(claims.sub, "alice");
        assert_eq!(claims.role, Side::Agent);
        assert_eq!(claims.exp, 1060);
    }

    #[test]
    fn expired_token_is_rejected() {
        let keys = TokenKeys::new(SECRET, 60);
        let token = keys.issue("room-1", "alice", Side::Agent, 1000);
        assert_eq!(keys.verify(&token, 1060), Err(TokenError::Expired));
    }

    #[test]
    fn token_signed_with_another_key_is_rejected() {
        let ours = TokenKeys::new(SECRET, 60);
        let theirs = TokenKeys::new(b"another-secret-another-secret-xx", 60);
        let forged = theirs.issue("room-1", "mallory", Side::Agent, 1000);
        assert_eq!(ours.verify(&forged, 1001), Err(TokenError::Invalid));
        assert_eq!(ours.verify("not.a.token", 1001), Err(TokenError::Invalid));
        assert_eq!(ours.verify("", 1001), Err(TokenError::Invalid));
    }

    #[test]
    fn tampered_claims_are_rejected() {
        let keys = TokenKeys::new(SECRET, 60);
        let token = keys.issue("room-1", "alice", Side::Customer, 1000);
        let mut parts: Vec<&str> = token.split('.').collect();
        let other = keys.issue("room-2", "alice", Side::Agent, 1000);
        let other_payload = other.split('.').nth(1).expect("three parts");
        parts[1] = other_payload;
        assert_eq!(
            keys.verify(&parts.join("."), 1001),
            Err(TokenError::Invalid)
        );
    }
}
