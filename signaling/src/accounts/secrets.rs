//! Personal data at rest and in logs: AES-256-GCM for ID numbers, masking for
//! display, and a wrapper that keeps values out of logs.

use std::fmt;

use aes_gcm::aead::{Aead, KeyInit};
use aes_gcm::{Aes256Gcm, Key, Nonce};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;

/// Nonce length of AES-GCM (96 bits), stored in front of the ciphertext.
const NONCE_LEN: usize = 12;

/// The key that encrypts personal data at rest.
#[derive(Clone)]
pub struct DataKey(Aes256Gcm);

impl fmt::Debug for DataKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("DataKey(..)")
    }
}

/// Decryption failed: wrong key, or the stored value was altered.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("cannot decrypt the stored value (wrong key or corrupted)")]
pub struct DecryptError;

impl DataKey {
    /// From 32 raw key bytes.
    pub fn from_bytes(bytes: &[u8; 32]) -> Self {
        Self(Aes256Gcm::new(Key::<Aes256Gcm>::from_slice(bytes)))
    }

    /// From the base64 form kept in configuration or the data folder.
    pub fn from_base64(text: &str) -> Result<Self, String> {
        let bytes = B64
            .decode(text.trim())
            .map_err(|e| format!("data key is not base64: {e}"))?;
        let bytes: [u8; 32] = bytes
            .try_into()
            .map_err(|_| "data key must be 32 bytes".to_string())?;
        Ok(Self::from_bytes(&bytes))
    }

    /// A fresh random key, in its base64 form.
    pub fn generate_base64() -> String {
        let bytes: [u8; 32] = rand::random();
        B64.encode(bytes)
    }

    /// Encrypts with a random nonce: base64(nonce || ciphertext+tag).
    pub fn encrypt(&self, plaintext: &str) -> String {
        let nonce_bytes: [u8; NONCE_LEN] = rand::random();
        // Invariant: AES-GCM encryption of an in-memory buffer does not fail.
        let ciphertext = self
            .0
            .encrypt(Nonce::from_slice(&nonce_bytes), plaintext.as_bytes())
            .unwrap_or_default();
        let mut out = nonce_bytes.to_vec();
        out.extend_from_slice(&ciphertext);
        B64.encode(out)
    }

    /// Encrypts bytes with a random nonce: nonce || ciphertext+tag (objects at rest).
    pub fn encrypt_bytes(&self, plaintext: &[u8]) -> Vec<u8> {
        let nonce_bytes: [u8; NONCE_LEN] = rand::random();
        // Invariant: AES-GCM encryption of an in-memory buffer does not fail.
        let ciphertext = self
            .0
            .encrypt(Nonce::from_slice(&nonce_bytes), plaintext)
            .unwrap_or_default();
        let mut out = nonce_bytes.to_vec();
        out.extend_from_slice(&ciphertext);
        out
    }

    pub fn decrypt_bytes(&self, stored: &[u8]) -> Result<Vec<u8>, DecryptError> {
        if stored.len() <= NONCE_LEN {
            return Err(DecryptError);
        }
        let (nonce, ciphertext) = stored.split_at(NONCE_LEN);
        self.0
            .decrypt(Nonce::from_slice(nonce), ciphertext)
            .map_err(|_| DecryptError)
    }

    pub fn decrypt(&self, stored: &str) -> Result<String, DecryptError> {
        let bytes = B64.decode(stored).map_err(|_| DecryptError)?;
        if bytes.len() <= NONCE_LEN {
            return Err(DecryptError);
        }
        let (nonce, ciphertext) = bytes.split_at(NONCE_LEN);
        let plain = self
            .0
            .decrypt(Nonce::from_slice(nonce), ciphertext)
            .map_err(|_| DecryptError)?;
        String::from_utf8(plain).map_err(|_| DecryptError)
    }
}

/// An ID number as shown anywhere: first 3 and last 4 characters, the rest starred
/// (`110***********1234`). Short values are starred whole.
pub fn mask_id_number(id_number: &str) -> String {
    let chars: Vec<char> = id_number.chars().collect();
    if chars.len() <= 7 {
        return "*".repeat(chars.len());
    }
    let head: String = chars[..3].iter().collect();
    let tail: String = chars[chars.len() - 4..].iter().collect();
    format!("{head}{}{tail}", "*".repeat(chars.len() - 7))
}

/// Checks a mainland resident ID number's shape: 17 digits and a digit or `X`.
pub fn validate_id_number(id_number: &str) -> Result<(), String> {
    let b = id_number.as_bytes();
    let shape_ok = b.len() == 18
        && b[..17].iter().all(u8::is_ascii_digit)
        && (b[17].is_ascii_digit() || b[17] == b'X');
    if shape_ok {
        Ok(())
    } else {
        Err("18 characters: 17 digits then a digit or X".into())
    }
}

/// Personal data that must not reach logs: prints `{REDACTED}`.
#[derive(Clone, PartialEq, Eq)]
pub struct Pii<T>(pub T);

impl<T> fmt::Debug for Pii<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("{REDACTED}")
    }
}

impl<T> fmt::Display for Pii<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("{REDACTED}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> DataKey {
        DataKey::from_bytes(&[7u8; 32])
    }

    #[test]
    fn encryption_round_trips_and_hides_the_value() {
        let stored = key().encrypt("110101199003071234");
        assert!(!stored.contains("1234"), "{stored}");
        assert_ne!(stored, key().encrypt("110101199003071234"), "random nonce");
        assert_eq!(key().decrypt(&stored).as_deref(), Ok("110101199003071234"));
    }

    #[test]
    fn wrong_key_or_tampering_fails_to_decrypt() {
        let stored = key().encrypt("110101199003071234");
        assert_eq!(
            DataKey::from_bytes(&[8u8; 32]).decrypt(&stored),
            Err(DecryptError)
        );
        let mut bytes = B64.decode(&stored).expect("b64");
        let last = bytes.len() - 1;
        bytes[last] ^= 1;
        assert_eq!(key().decrypt(&B64.encode(bytes)), Err(DecryptError));
        assert_eq!(key().decrypt("short"), Err(DecryptError));
    }

    #[test]
    fn bytes_round_trip_and_tampering_fails() {
        let stored = key().encrypt_bytes(b"\xff\xd8 a photo");
        assert!(!stored.windows(7).any(|w| w == b"a photo"));
        assert_eq!(
            key().decrypt_bytes(&stored).as_deref(),
            Ok(&b"\xff\xd8 a photo"[..])
        );
        let mut bad = stored.clone();
        bad[20] ^= 1;
        assert_eq!(key().decrypt_bytes(&bad), Err(DecryptError));
    }

    #[test]
    fn id_numbers_are_masked_like_the_dashboard_shows_them() {
        assert_eq!(mask_id_number("110101199003071234"), "110***********1234");
        assert_eq!(mask_id_number("1234567"), "*******");
    }

    #[test]
    fn id_number_shape_is_checked() {
        assert!(validate_id_number("11010119900307123X").is_ok());
        assert!(validate_id_number("110101199003071234").is_ok());
        assert!(validate_id_number("1101011990030712").is_err());
        assert!(validate_id_number("11010119900307123Y").is_err());
    }

    #[test]
    fn pii_never_prints_its_value() {
        let p = Pii("13800138000");
        assert_eq!(format!("{p} {p:?}"), "{REDACTED} {REDACTED}");
    }

    #[test]
    fn data_key_base64_form_is_validated() {
        assert!(DataKey::from_base64(&DataKey::generate_base64()).is_ok());
        assert!(DataKey::from_base64("not base64!").is_err());
        assert!(DataKey::from_base64("c2hvcnQ=").is_err());
    }
}
