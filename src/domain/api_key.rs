//! API keys handed to users: their format, generation and hashing.
//!
//! A key is `cch_` followed by 40 base62 characters (≈ 238 bits). Only its SHA-256 hex digest is
//! stored; the plaintext is shown once at creation.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::error::ValidationError;
use super::limits::Limits;

/// Prefix of every key cch issues.
pub const KEY_PREFIX: &str = "cch_";
/// Random characters after the prefix.
pub const KEY_RANDOM_LEN: usize = 40;
const BASE62: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// An API key as stored: the hash, never the plaintext.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiKey {
    /// Database id (0 before insertion).
    pub id: i64,
    /// The owning user.
    pub user_id: i64,
    /// Label chosen by the admin.
    pub name: String,
    /// SHA-256 hex digest of the plaintext key.
    pub key_hash: String,
    /// The last four characters of the plaintext, for masked display.
    pub key_last4: String,
    /// Disabled keys are rejected with 403.
    pub enabled: bool,
    /// After this instant the key is rejected with 403.
    pub expires_at: Option<DateTime<Utc>>,
    /// The key's own limits (the stricter of key and user applies).
    pub limits: Limits,
    /// Creation time.
    pub created_at: DateTime<Utc>,
    /// Last modification time.
    pub updated_at: DateTime<Utc>,
}

impl ApiKey {
    /// The key as shown in lists: prefix, ellipsis and the last four characters.
    pub fn masked(&self) -> String {
        format!("{KEY_PREFIX}…{}", self.key_last4)
    }

    /// Checks the admin-editable fields.
    pub fn validate(&self) -> Result<(), ValidationError> {
        super::text::single_line("name", &self.name)?;
        if self.name.trim().is_empty() || self.name.chars().count() > 64 {
            return Err(ValidationError::new("name", "must be 1 to 64 characters"));
        }
        self.limits.validate()
    }

    /// Whether the key may be used at `now` (the user is checked separately).
    pub fn is_active(&self, now: DateTime<Utc>) -> bool {
        self.enabled && self.expires_at.is_none_or(|t| t > now)
    }
}

/// Generates a new plaintext key from a source of random bytes (passed in to keep this pure).
pub fn generate_key(mut random_byte: impl FnMut() -> u8) -> String {
    let mut key = String::with_capacity(KEY_PREFIX.len() + KEY_RANDOM_LEN);
    key.push_str(KEY_PREFIX);
    while key.len() < KEY_PREFIX.len() + KEY_RANDOM_LEN {
        let b = random_byte();
        // Rejection sampling keeps the distribution uniform: 248 = 4 × 62.
        if b < 248 {
            key.push(BASE62[(b % 62) as usize] as char);
        }
    }
    key
}

/// SHA-256 hex digest of a key, the only form in which keys are stored or looked up.
pub fn hash_key(plaintext: &str) -> String {
    hex::encode(Sha256::digest(plaintext.as_bytes()))
}

/// The last four characters of a key, kept for masked display.
pub fn last4(plaintext: &str) -> String {
    let chars: Vec<char> = plaintext.chars().collect();
    chars[chars.len().saturating_sub(4)..].iter().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_keys_have_prefix_and_base62_tail() {
        let mut n = 0u8;
        let key = generate_key(|| {
            n = n.wrapping_add(37);
            n
        });
        assert!(key.starts_with("cch_"));
        assert_eq!(key.len(), 4 + KEY_RANDOM_LEN);
        assert!(key[4..].bytes().all(|b| b.is_ascii_alphanumeric()));
    }

    #[test]
    fn hash_is_sha256_hex() {
        assert_eq!(
            hash_key("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(last4("cch_abcdef"), "cdef");
    }
}
