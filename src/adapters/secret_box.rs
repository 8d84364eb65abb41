//! Secrets at rest: AES-256-GCM with a fresh random 96-bit nonce per value and the value's
//! place (table, column, row id) bound as associated data, so a sealed value copied into
//! another row or column does not open. A sealed value is stored as text:
//! `enc:v1:<key id>:<base64 of nonce ‖ ciphertext ‖ tag>`; the key id (the first 8 hex digits
//! of the key's SHA-256) tells which key sealed it, so several keys can be held while one is
//! rotated out, and a wrong key is recognised before anything is decrypted or written.

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use sha2::{Digest, Sha256};

/// The prefix of every sealed value.
pub const SEALED_PREFIX: &str = "enc:v1:";
/// Key length in bytes.
pub const KEY_BYTES: usize = 32;
const NONCE_BYTES: usize = 12;

/// Why a value could not be opened.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SealError {
    /// Sealed with a key this process does not hold.
    #[error("sealed with key {0}, which is not among the configured keys (CCH_SECRET_KEY)")]
    UnknownKey(String),
    /// The value or its place was altered, or the format is broken.
    #[error("a sealed value does not open: {0}")]
    Corrupt(&'static str),
}

/// One key: its id and cipher.
struct SealKey {
    id: String,
    cipher: Aes256Gcm,
}

impl SealKey {
    fn new(raw: &[u8; KEY_BYTES]) -> Self {
        let digest = Sha256::digest(raw);
        Self {
            id: hex::encode(&digest[..4]),
            cipher: Aes256Gcm::new(raw.into()),
        }
    }
}

/// The keys: one seals, every one opens what it sealed.
pub struct Keyring {
    primary: SealKey,
    others: Vec<SealKey>,
}

impl std::fmt::Debug for Keyring {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Keyring")
            .field("primary", &self.primary.id)
            .field(
                "others",
                &self.others.iter().map(|k| &k.id).collect::<Vec<_>>(),
            )
            .finish()
    }
}

/// Decodes a base64 key of exactly [`KEY_BYTES`] bytes.
pub fn decode_key(text: &str) -> Result<[u8; KEY_BYTES], String> {
    let bytes = STANDARD
        .decode(text.trim())
        .map_err(|_| "not valid base64".to_string())?;
    <[u8; KEY_BYTES]>::try_from(bytes.as_slice())
        .map_err(|_| format!("{} bytes instead of {KEY_BYTES}", bytes.len()))
}

/// A fresh random key, base64.
pub fn generate_key() -> String {
    use rand::RngCore;
    let mut raw = [0u8; KEY_BYTES];
    rand::rng().fill_bytes(&mut raw);
    STANDARD.encode(raw)
}

/// Whether a stored value is sealed (anything else is plaintext from before encryption).
pub fn is_sealed(stored: &str) -> bool {
    stored.starts_with(SEALED_PREFIX)
}

impl Keyring {
    /// A keyring sealing with `primary` and also opening values sealed with `others`.
    pub fn new(primary: &[u8; KEY_BYTES], others: &[[u8; KEY_BYTES]]) -> Self {
        Self {
            primary: SealKey::new(primary),
            others: others.iter().map(SealKey::new).collect(),
        }
    }

    /// The id of the sealing key.
    pub fn primary_id(&self) -> &str {
        &self.primary.id
    }

    /// The id of the key that sealed `stored`, when it is sealed.
    pub fn key_id_of(stored: &str) -> Option<&str> {
        stored.strip_prefix(SEALED_PREFIX)?.split(':').next()
    }

    /// Seals `plain` for the place `ad` (e.g. `providers.api_key:12`).
    pub fn seal(&self, plain: &str, ad: &str) -> String {
        use rand::RngCore;
        let mut nonce = [0u8; NONCE_BYTES];
        rand::rng().fill_bytes(&mut nonce);
        let sealed = self
            .primary
            .cipher
            .encrypt(
                &Nonce::from(nonce),
                Payload {
                    msg: plain.as_bytes(),
                    aad: ad.as_bytes(),
                },
            )
            // AES-GCM encryption fails only for messages over 64 GiB.
            .unwrap_or_default();
        let mut out = Vec::with_capacity(NONCE_BYTES + sealed.len());
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&sealed);
        format!(
            "{SEALED_PREFIX}{}:{}",
            self.primary.id,
            STANDARD.encode(out)
        )
    }

    /// Opens a value stored at place `ad`: a sealed value is decrypted with the key that
    /// sealed it; plaintext (not yet sealed) is returned as it is.
    pub fn open(&self, stored: &str, ad: &str) -> Result<String, SealError> {
        let Some(rest) = stored.strip_prefix(SEALED_PREFIX) else {
            return Ok(stored.to_string());
        };
        let (id, body) = rest
            .split_once(':')
            .ok_or(SealError::Corrupt("no key id"))?;
        let key = std::iter::once(&self.primary)
            .chain(&self.others)
            .find(|k| k.id == id)
            .ok_or_else(|| SealError::UnknownKey(id.to_string()))?;
        let raw = STANDARD
            .decode(body)
            .map_err(|_| SealError::Corrupt("not base64"))?;
        if raw.len() < NONCE_BYTES + 16 {
            return Err(SealError::Corrupt("too short"));
        }
        let (nonce, sealed) = raw.split_at(NONCE_BYTES);
        let nonce: [u8; NONCE_BYTES] = nonce
            .try_into()
            .map_err(|_| SealError::Corrupt("too short"))?;
        let plain = key
            .cipher
            .decrypt(
                &Nonce::from(nonce),
                Payload {
                    msg: sealed,
                    aad: ad.as_bytes(),
                },
            )
            .map_err(|_| SealError::Corrupt("authentication failed (altered or moved)"))?;
        String::from_utf8(plain).map_err(|_| SealError::Corrupt("not UTF-8"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(b: u8) -> [u8; KEY_BYTES] {
        [b; KEY_BYTES]
    }

    #[test]
    fn seals_with_fresh_nonces_and_opens_only_in_place() {
        let ring = Keyring::new(&key(1), &[]);
        let a = ring.seal("sk-secret", "providers.api_key:1");
        let b = ring.seal("sk-secret", "providers.api_key:1");
        assert_ne!(a, b, "a fresh nonce per value");
        assert!(is_sealed(&a) && !a.contains("sk-secret"));
        assert_eq!(ring.open(&a, "providers.api_key:1").unwrap(), "sk-secret");
        assert!(matches!(
            ring.open(&a, "providers.api_key:2"),
            Err(SealError::Corrupt(_))
        ));
        let mut tampered = a.clone();
        tampered.pop();
        tampered.push('A');
        assert!(ring.open(&tampered, "providers.api_key:1").is_err());
        assert_eq!(ring.open("plain", "x").unwrap(), "plain");
    }

    #[test]
    fn a_rotated_ring_opens_old_values_and_a_wrong_key_is_named() {
        let old = Keyring::new(&key(1), &[]);
        let sealed = old.seal("v", "t.c:1");
        let rotating = Keyring::new(&key(2), &[key(1)]);
        assert_eq!(rotating.open(&sealed, "t.c:1").unwrap(), "v");
        assert_eq!(
            Keyring::key_id_of(&rotating.seal("v", "t.c:1")),
            Some(rotating.primary_id())
        );
        let wrong = Keyring::new(&key(3), &[]);
        assert_eq!(
            wrong.open(&sealed, "t.c:1"),
            Err(SealError::UnknownKey(old.primary_id().to_string()))
        );
    }

    #[test]
    fn keys_decode_from_base64_of_32_bytes() {
        let k = generate_key();
        assert!(decode_key(&k).is_ok());
        assert!(decode_key("c2hvcnQ=").unwrap_err().contains("bytes"));
        assert!(decode_key("!!").is_err());
    }
}
