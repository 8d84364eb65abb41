//! A provider key that is an OAuth credential rather than an API key: what Gemini CLI's Google
//! login leaves in `~/.gemini/oauth_creds.json` (`access_token`, `refresh_token`,
//! `expiry_date` in epoch milliseconds), optionally with the OAuth client (`client_id`,
//! `client_secret`), the token endpoint (`token_uri`) and the Code Assist project
//! (`project_id`). Go's token JSON spelling (`expiry` as RFC 3339) is read too.
//!
//! The credential is kept as the JSON object it came in (unknown fields survive a refresh);
//! this module only reads it, decides when it needs refreshing, builds the refresh request's
//! form and applies the token endpoint's answer. Sending and storing are the app's job.

use chrono::{DateTime, Duration, TimeZone, Utc};
use serde_json::{Map, Value};

/// Google's token endpoint, used when the credential names none.
pub const GOOGLE_TOKEN_URI: &str = "https://oauth2.googleapis.com/token";

/// How long before its expiry an access token is refreshed (a request that starts with a token
/// about to expire could be refused half-way through a long stream's setup).
pub const REFRESH_MARGIN_SECS: i64 = 300;

/// Largest credential accepted (an `id_token` makes real ones 2–3 KB).
pub const MAX_CREDENTIAL_BYTES: usize = 16 * 1024;

/// Why a credential cannot be used or refreshed. Messages never contain a token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CredentialError {
    /// The key looks like JSON but is not a usable credential.
    #[error("the OAuth credential is not valid: {0}")]
    Invalid(String),
    /// The access token expired and the credential cannot be refreshed.
    #[error("the OAuth access token expired and cannot be refreshed: {0}")]
    CannotRefresh(&'static str),
    /// The token endpoint's answer could not be used.
    #[error("the OAuth token endpoint answered without a usable token: {0}")]
    BadTokenAnswer(String),
}

/// An OAuth credential stored as a provider's key.
#[derive(Debug, Clone, PartialEq)]
pub struct OAuthCredential {
    fields: Map<String, Value>,
}

impl OAuthCredential {
    /// Reads a provider key: `None` when it is a plain key (anything that is not a JSON
    /// object), `Some(Err)` when it is a JSON object that is not a usable credential.
    pub fn parse(api_key: &str) -> Option<Result<Self, CredentialError>> {
        let text = api_key.trim();
        if !text.starts_with('{') {
            return None;
        }
        let fields = match serde_json::from_str::<Map<String, Value>>(text) {
            Ok(f) => f,
            Err(e) => return Some(Err(CredentialError::Invalid(format!("not JSON: {e}")))),
        };
        let cred = Self { fields };
        if cred.access_token().is_none() && cred.refresh_token().is_none() {
            return Some(Err(CredentialError::Invalid(
                "it needs `access_token` or `refresh_token`".into(),
            )));
        }
        if let Some(uri) = cred.str_field("token_uri")
            && !(uri.starts_with("https://") || uri.starts_with("http://"))
        {
            return Some(Err(CredentialError::Invalid(
                "`token_uri` must be an http(s) URL".into(),
            )));
        }
        Some(Ok(cred))
    }

    fn str_field(&self, name: &str) -> Option<&str> {
        self.fields
            .get(name)
            .and_then(Value::as_str)
            .map(str::trim)
            .filter(|s| !s.is_empty())
    }

    /// The current access token, if any.
    pub fn access_token(&self) -> Option<&str> {
        self.str_field("access_token")
    }

    /// The refresh token, if any.
    pub fn refresh_token(&self) -> Option<&str> {
        self.str_field("refresh_token")
    }

    /// The Code Assist project the credential is for (`project_id` or `project`), if set.
    pub fn project_id(&self) -> Option<&str> {
        self.str_field("project_id")
            .or_else(|| self.str_field("project"))
    }

    /// Where refreshes are sent.
    pub fn token_uri(&self) -> &str {
        self.str_field("token_uri").unwrap_or(GOOGLE_TOKEN_URI)
    }

    /// When the access token expires: `expiry_date` (epoch ms, Google's libraries) or `expiry`
    /// (RFC 3339, Go's). `None` when the credential does not say.
    pub fn expires_at(&self) -> Option<DateTime<Utc>> {
        if let Some(ms) = self.fields.get("expiry_date").and_then(Value::as_f64) {
            return Utc.timestamp_millis_opt(ms as i64).single();
        }
        self.str_field("expiry")
            .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
            .map(|t| t.with_timezone(&Utc))
    }

    /// Whether the access token is missing or expires within [`REFRESH_MARGIN_SECS`] of `now`
    /// (a token without a stated expiry is used until the provider refuses it).
    pub fn needs_refresh(&self, now: DateTime<Utc>) -> bool {
        self.access_token().is_none()
            || self
                .expires_at()
                .is_some_and(|t| t - Duration::seconds(REFRESH_MARGIN_SECS) <= now)
    }

    /// Whether the access token can no longer be used at all.
    pub fn is_expired(&self, now: DateTime<Utc>) -> bool {
        self.access_token().is_none() || self.expires_at().is_some_and(|t| t <= now)
    }

    /// The `application/x-www-form-urlencoded` body of a refresh (RFC 6749 §6).
    pub fn refresh_form(&self) -> Result<String, CredentialError> {
        let refresh = self
            .refresh_token()
            .ok_or(CredentialError::CannotRefresh("it has no `refresh_token`"))?;
        let mut form = url::form_urlencoded::Serializer::new(String::new());
        form.append_pair("grant_type", "refresh_token");
        form.append_pair("refresh_token", refresh);
        if let Some(id) = self.str_field("client_id") {
            form.append_pair("client_id", id);
        }
        if let Some(secret) = self.str_field("client_secret") {
            form.append_pair("client_secret", secret);
        }
        Ok(form.finish())
    }

    /// The credential after a successful refresh answered with `body` at `now`: the new access
    /// token and expiry (and refresh token, when the endpoint rotated it); every other field
    /// kept as it was.
    pub fn refreshed(&self, body: &[u8], now: DateTime<Utc>) -> Result<Self, CredentialError> {
        let answer: Map<String, Value> = serde_json::from_slice(body)
            .map_err(|_| CredentialError::BadTokenAnswer("not a JSON object".into()))?;
        let token = answer
            .get("access_token")
            .and_then(Value::as_str)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| CredentialError::BadTokenAnswer("no `access_token`".into()))?;
        let mut fields = self.fields.clone();
        fields.insert("access_token".into(), Value::String(token.to_string()));
        if let Some(r) = answer
            .get("refresh_token")
            .and_then(Value::as_str)
            .filter(|r| !r.is_empty())
        {
            fields.insert("refresh_token".into(), Value::String(r.to_string()));
        }
        for copied in ["token_type", "scope", "id_token"] {
            if let Some(v) = answer.get(copied) {
                fields.insert(copied.into(), v.clone());
            }
        }
        let lifetime = answer
            .get("expires_in")
            .and_then(Value::as_i64)
            .filter(|s| *s > 0)
            .unwrap_or(3600);
        let expiry = now + Duration::seconds(lifetime);
        if fields.contains_key("expiry") && !fields.contains_key("expiry_date") {
            fields.insert("expiry".into(), Value::String(expiry.to_rfc3339()));
        } else {
            fields.insert("expiry_date".into(), Value::from(expiry.timestamp_millis()));
        }
        Ok(Self { fields })
    }

    /// The credential as stored in the provider's key.
    pub fn to_json(&self) -> String {
        Value::Object(self.fields.clone()).to_string()
    }
}

/// Checks a provider key at save time: a plain key is left to the caller's rules; a JSON one
/// must be a usable credential within [`MAX_CREDENTIAL_BYTES`].
pub fn validate_key(api_key: &str) -> Result<bool, CredentialError> {
    match OAuthCredential::parse(api_key) {
        None => Ok(false),
        Some(_) if api_key.len() > MAX_CREDENTIAL_BYTES => Err(CredentialError::Invalid(format!(
            "it is longer than {MAX_CREDENTIAL_BYTES} bytes"
        ))),
        Some(r) => r.map(|_| true),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s)
            .map(|t| t.with_timezone(&Utc))
            .unwrap_or_default()
    }

    const CLI_CREDS: &str = r#"{"access_token":"ya29.old","refresh_token":"1//rt","scope":"s","token_type":"Bearer","id_token":"e.y.j","expiry_date":1764921600000,"client_id":"cid","client_secret":"cs"}"#;

    #[test]
    fn plain_keys_are_not_credentials() {
        assert!(OAuthCredential::parse("sk-ant-123").is_none());
        assert!(OAuthCredential::parse("AIzaSy123").is_none());
        assert_eq!(validate_key("sk-1"), Ok(false));
    }

    #[test]
    fn gemini_cli_credentials_are_read() {
        let c = OAuthCredential::parse(CLI_CREDS).and_then(Result::ok);
        let c = c.expect("a credential");
        assert_eq!(c.access_token(), Some("ya29.old"));
        assert_eq!(c.refresh_token(), Some("1//rt"));
        assert_eq!(c.token_uri(), GOOGLE_TOKEN_URI);
        assert_eq!(c.expires_at(), Some(at("2025-12-05T08:00:00Z")));
        assert!(!c.needs_refresh(at("2025-12-05T07:54:00Z")));
        assert!(c.needs_refresh(at("2025-12-05T07:56:00Z")));
        assert!(!c.is_expired(at("2025-12-05T07:59:59Z")));
        assert!(c.is_expired(at("2025-12-05T08:00:00Z")));
        assert_eq!(validate_key(CLI_CREDS), Ok(true));
    }

    #[test]
    fn broken_credentials_are_refused_with_a_reason_and_no_token() {
        for bad in [
            r#"{"access_token": "#,
            r#"{"scope":"x"}"#,
            r#"{"refresh_token":"r","token_uri":"file:///etc/passwd"}"#,
        ] {
            let e = validate_key(bad).expect_err(bad);
            assert!(!e.to_string().contains("ya29"), "{e}");
        }
        let long = format!(
            r#"{{"access_token":"{}"}}"#,
            "a".repeat(MAX_CREDENTIAL_BYTES)
        );
        assert!(validate_key(&long).is_err());
    }

    #[test]
    fn refresh_form_is_url_encoded_and_needs_a_refresh_token() {
        let c = OAuthCredential::parse(r#"{"access_token":"a","refresh_token":"1//a+b&c","client_id":"id","client_secret":"s=1"}"#)
            .and_then(Result::ok)
            .expect("credential");
        assert_eq!(
            c.refresh_form().as_deref(),
            Ok(
                "grant_type=refresh_token&refresh_token=1%2F%2Fa%2Bb%26c&client_id=id&client_secret=s%3D1"
            )
        );
        let only_access = OAuthCredential::parse(r#"{"access_token":"a"}"#)
            .and_then(Result::ok)
            .expect("credential");
        assert!(only_access.refresh_form().is_err());
        assert!(!only_access.needs_refresh(at("2030-01-01T00:00:00Z")));
    }

    #[test]
    fn a_refresh_keeps_the_other_fields_and_sets_the_expiry() {
        let c = OAuthCredential::parse(CLI_CREDS)
            .and_then(Result::ok)
            .expect("credential");
        let now = at("2025-12-05T07:58:00Z");
        let r = c
            .refreshed(
                br#"{"access_token":"ya29.new","expires_in":3599,"token_type":"Bearer"}"#,
                now,
            )
            .expect("refreshed");
        assert_eq!(r.access_token(), Some("ya29.new"));
        assert_eq!(r.refresh_token(), Some("1//rt"));
        assert_eq!(r.expires_at(), Some(now + Duration::seconds(3599)));
        assert!(r.to_json().contains("\"client_secret\":\"cs\""));
        let rotated = c
            .refreshed(br#"{"access_token":"n","refresh_token":"1//new"}"#, now)
            .expect("refreshed");
        assert_eq!(rotated.refresh_token(), Some("1//new"));
        assert!(c.refreshed(br#"{"error":"invalid_grant"}"#, now).is_err());
        assert!(c.refreshed(b"<html>", now).is_err());
    }

    #[test]
    fn go_style_expiry_is_read_and_written_back_in_its_own_spelling() {
        let c = OAuthCredential::parse(
            r#"{"access_token":"a","refresh_token":"r","expiry":"2025-12-05T08:00:00+01:00","project_id":"proj-1"}"#,
        )
        .and_then(Result::ok)
        .expect("credential");
        assert_eq!(c.expires_at(), Some(at("2025-12-05T07:00:00Z")));
        assert_eq!(c.project_id(), Some("proj-1"));
        let r = c
            .refreshed(
                br#"{"access_token":"b","expires_in":60}"#,
                at("2025-12-05T07:00:00Z"),
            )
            .expect("refreshed");
        assert_eq!(r.expires_at(), Some(at("2025-12-05T07:01:00Z")));
        assert!(!r.to_json().contains("expiry_date"));
    }
}
