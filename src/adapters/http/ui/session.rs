//! The console's login session: a signed cookie, so it survives restarts and works on every
//! instance that shares the same `ADMIN_TOKEN` (the signing key is derived from it; changing the
//! token ends every session).
//!
//! Value: `1.a.<expires>.<mac>` for the admin token, `1.k.<key id>.<hash prefix>.<expires>.<mac>`
//! for a user's key. The key's hash prefix binds the session to that exact key; the key, its user
//! and their state are looked up in the configuration snapshot on every request, so disabling or
//! deleting the key ends its sessions at once.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use poem::http::HeaderMap;
use sha2::Sha256;

use crate::app::snapshot::ConfigSnapshot;
use crate::domain::api_key::ApiKey;
use crate::domain::user::{Role, User};

/// Name of the session cookie.
pub const SESSION_COOKIE: &str = "cch_session";
/// How long a session lasts after login (7 days, as in the original).
pub const SESSION_TTL_SECS: i64 = 7 * 24 * 3600;
/// Hex characters of the key hash kept in a key session.
const HASH_PREFIX_LEN: usize = 16;

type HmacSha256 = Hmac<Sha256>;

/// Who a valid session belongs to.
#[derive(Debug, Clone)]
pub enum Viewer {
    /// Logged in with the admin token.
    Admin,
    /// Logged in with a user's key.
    KeyHolder {
        /// The key's user.
        user: Arc<User>,
        /// The key used to log in.
        key: Arc<ApiKey>,
    },
}

impl Viewer {
    /// True when the viewer may use the whole console and the admin API: the admin token, or a
    /// key whose user has role `admin`.
    pub fn is_admin(&self) -> bool {
        match self {
            Self::Admin => true,
            Self::KeyHolder { user, .. } => user.role == Role::Admin,
        }
    }
}

/// What a session cookie names, before it is checked against the snapshot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Subject {
    /// The admin token.
    Admin,
    /// A key, by id and the first characters of its hash.
    Key {
        /// Key id.
        id: i64,
        /// First [`HASH_PREFIX_LEN`] characters of the key's hash.
        hash_prefix: String,
    },
}

/// Signs and verifies session cookies.
#[derive(Clone)]
pub struct SessionSigner {
    key: [u8; 32],
}

impl SessionSigner {
    /// A signer whose key is derived from the admin token (never the token itself).
    pub fn from_admin_token(admin_token: &str) -> Self {
        let mut mac = <HmacSha256 as Mac>::new_from_slice(admin_token.as_bytes())
            .expect("HMAC accepts keys of any length");
        mac.update(b"cch console session v1");
        Self {
            key: mac.finalize().into_bytes().into(),
        }
    }

    fn mac_hex(&self, payload: &str) -> String {
        let mut mac =
            <HmacSha256 as Mac>::new_from_slice(&self.key).expect("HMAC accepts a 32-byte key");
        mac.update(payload.as_bytes());
        hex::encode(mac.finalize().into_bytes())
    }

    /// A cookie value for `subject`, valid until `expires`.
    pub fn issue(&self, subject: &Subject, expires: DateTime<Utc>) -> String {
        let payload = match subject {
            Subject::Admin => format!("1.a.{}", expires.timestamp()),
            Subject::Key { id, hash_prefix } => {
                format!("1.k.{id}.{hash_prefix}.{}", expires.timestamp())
            }
        };
        let mac = self.mac_hex(&payload);
        format!("{payload}.{mac}")
    }

    /// The subject of a cookie value whose signature is right and which has not expired.
    pub fn verify(&self, value: &str, now: DateTime<Utc>) -> Option<Subject> {
        let (payload, mac) = value.rsplit_once('.')?;
        let expected = self.mac_hex(payload);
        if !constant_time_eq(expected.as_bytes(), mac.as_bytes()) {
            return None;
        }
        let parts: Vec<&str> = payload.split('.').collect();
        let (subject, expires) = match parts.as_slice() {
            ["1", "a", exp] => (Subject::Admin, *exp),
            ["1", "k", id, prefix, exp] => (
                Subject::Key {
                    id: id.parse().ok()?,
                    hash_prefix: (*prefix).to_string(),
                },
                *exp,
            ),
            _ => return None,
        };
        let expires: i64 = expires.parse().ok()?;
        (expires > now.timestamp()).then_some(subject)
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The session subject for a key.
pub fn key_subject(key: &ApiKey) -> Subject {
    Subject::Key {
        id: key.id,
        hash_prefix: key.key_hash.chars().take(HASH_PREFIX_LEN).collect(),
    }
}

/// Resolves a subject against the current configuration: a key session holds only while the
/// key and its user exist, are enabled and have not expired.
pub fn resolve(subject: &Subject, snap: &ConfigSnapshot, now: DateTime<Utc>) -> Option<Viewer> {
    match subject {
        Subject::Admin => Some(Viewer::Admin),
        Subject::Key { id, hash_prefix } => {
            let key = snap.keys_by_id.get(id)?;
            if !key.key_hash.starts_with(hash_prefix.as_str()) || !key.is_active(now) {
                return None;
            }
            let user = snap.users.get(&key.user_id)?;
            let user_active = user.enabled && user.expires_at.is_none_or(|e| e > now);
            user_active.then(|| Viewer::KeyHolder {
                user: Arc::clone(user),
                key: Arc::clone(key),
            })
        }
    }
}

/// The value of cookie `name` in the request's `Cookie` headers.
pub fn cookie_value<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(poem::http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.trim_matches('"'))
}

/// A `Set-Cookie` value for the session (`max_age` 0 clears it).
pub fn set_cookie_header(name: &str, value: &str, max_age: i64, secure: bool) -> String {
    let secure = if secure { "; Secure" } else { "" };
    format!("{name}={value}; Path=/; Max-Age={max_age}; HttpOnly; SameSite=Lax{secure}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn t(s: i64) -> DateTime<Utc> {
        Utc.timestamp_opt(s, 0).single().unwrap()
    }

    #[test]
    fn round_trip_and_expiry() {
        let s = SessionSigner::from_admin_token("tok");
        let v = s.issue(&Subject::Admin, t(1000));
        assert_eq!(s.verify(&v, t(999)), Some(Subject::Admin));
        assert_eq!(s.verify(&v, t(1000)), None);
        let k = Subject::Key {
            id: 7,
            hash_prefix: "abcdef0123456789".into(),
        };
        let v = s.issue(&k, t(50));
        assert_eq!(s.verify(&v, t(10)), Some(k));
    }

    #[test]
    fn tampering_and_other_tokens_fail() {
        let s = SessionSigner::from_admin_token("tok");
        let v = s.issue(&Subject::Admin, t(1000));
        assert_eq!(s.verify(&v.replace("1.a.1000", "1.a.9999"), t(1)), None);
        assert_eq!(
            SessionSigner::from_admin_token("tok2").verify(&v, t(1)),
            None
        );
        assert_eq!(s.verify("garbage", t(1)), None);
        assert_eq!(s.verify("", t(1)), None);
    }

    #[test]
    fn cookie_parsing() {
        let mut h = HeaderMap::new();
        h.insert("cookie", "a=1; cch_session=xyz; b=2".parse().unwrap());
        assert_eq!(cookie_value(&h, "cch_session"), Some("xyz"));
        assert_eq!(cookie_value(&h, "c"), None);
    }
}
