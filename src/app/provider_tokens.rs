//! The secret each upstream request presents: a provider's plain key as it is, or, for a key
//! that is an OAuth credential (`domain::oauth_credential`), its access token, refreshed before
//! it expires. A refresh goes through the outbound stack with the provider's proxy settings,
//! happens once per provider however many requests wait for it, and is written back to the
//! database (sealed like every provider key), so the other instances pick the new token up
//! instead of refreshing again.

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use bytes::Bytes;
use futures_util::StreamExt;

use crate::domain::oauth_credential::{CredentialError, OAuthCredential};
use crate::domain::provider::Provider;
use crate::ports::clock::Clock;
use crate::ports::store::ConfigStore;
use crate::ports::upstream::{UpstreamClient, UpstreamRequest};

/// Providers whose newest credential is remembered; past it the memory is cleared (each
/// provider then starts again from its stored credential).
const MAX_REMEMBERED: usize = 4096;

/// Time allowed for the token endpoint to answer (headers and body).
const REFRESH_TIMEOUT: Duration = Duration::from_secs(15);

/// Largest token endpoint answer read.
const MAX_TOKEN_ANSWER: usize = 64 * 1024;

/// Why no secret could be found for a provider. The message names no token.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{0}")]
pub struct TokenError(pub String);

impl From<CredentialError> for TokenError {
    fn from(e: CredentialError) -> Self {
        Self(e.to_string())
    }
}

/// The newest credential of one provider, and the stored key it was derived from (when the
/// stored key changes — an admin edit, another instance's refresh — the stored one wins).
struct Remembered {
    origin: String,
    credential: OAuthCredential,
}

type Slot = Arc<tokio::sync::Mutex<Option<Remembered>>>;

/// Resolves and refreshes provider secrets.
pub struct ProviderTokens {
    upstream: Arc<dyn UpstreamClient>,
    store: Option<Arc<dyn ConfigStore>>,
    clock: Arc<dyn Clock>,
    /// One slot per OAuth provider (bounded by [`MAX_REMEMBERED`]); its lock makes a refresh
    /// single-flight.
    slots: Mutex<HashMap<i64, Slot>>,
}

impl ProviderTokens {
    /// Refreshed credentials are written to `store` when there is one.
    pub fn new(
        upstream: Arc<dyn UpstreamClient>,
        store: Option<Arc<dyn ConfigStore>>,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Self {
            upstream,
            store,
            clock,
            slots: Mutex::new(HashMap::new()),
        }
    }

    fn slot(&self, provider_id: i64) -> Slot {
        let mut slots = self.slots.lock().unwrap_or_else(PoisonError::into_inner);
        if slots.len() >= MAX_REMEMBERED && !slots.contains_key(&provider_id) {
            slots.clear();
        }
        slots.entry(provider_id).or_default().clone()
    }

    /// What `p`'s requests present: its key, or its OAuth access token (refreshed first when it
    /// is about to expire). `use_proxy` says whether this attempt goes through the provider's
    /// proxy (the refresh takes the same way).
    pub async fn secret_for<'a>(
        &self,
        p: &'a Provider,
        use_proxy: bool,
    ) -> Result<Cow<'a, str>, TokenError> {
        let Some(parsed) = OAuthCredential::parse(&p.api_key) else {
            return Ok(Cow::Borrowed(p.api_key.as_str()));
        };
        let stored = parsed?;
        let now = self.clock.now();
        let slot = self.slot(p.id);
        let mut held = slot.lock().await;
        let current = match held.as_ref() {
            Some(r) if r.origin == p.api_key => r.credential.clone(),
            _ => stored,
        };
        if !current.needs_refresh(now) {
            let token = current.access_token().unwrap_or_default().to_string();
            *held = Some(Remembered {
                origin: p.api_key.clone(),
                credential: current,
            });
            return Ok(Cow::Owned(token));
        }
        // Another instance may have refreshed it already: the database has the newest.
        let current = match self.newer_in_store(p.id, now).await {
            Some(c) => c,
            None => current,
        };
        if !current.needs_refresh(now) {
            let token = current.access_token().unwrap_or_default().to_string();
            *held = Some(Remembered {
                origin: p.api_key.clone(),
                credential: current,
            });
            return Ok(Cow::Owned(token));
        }
        match self.refresh(&current, p, use_proxy).await {
            Ok(fresh) => {
                self.persist(p.id, &fresh).await;
                let token = fresh.access_token().unwrap_or_default().to_string();
                *held = Some(Remembered {
                    origin: p.api_key.clone(),
                    credential: fresh,
                });
                Ok(Cow::Owned(token))
            }
            // A token that still works is used while the refresh keeps failing.
            Err(e) if !current.is_expired(now) => {
                tracing::warn!(provider_id = p.id, error = %e, "OAuth token refresh failed; using the current token until it expires");
                Ok(Cow::Owned(
                    current.access_token().unwrap_or_default().to_string(),
                ))
            }
            Err(e) => Err(e),
        }
    }

    async fn newer_in_store(
        &self,
        provider_id: i64,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Option<OAuthCredential> {
        let store = self.store.as_ref()?;
        let p = store.get_provider(provider_id).await.ok()?;
        let c = OAuthCredential::parse(&p.api_key)?.ok()?;
        (!c.needs_refresh(now)).then_some(c)
    }

    async fn refresh(
        &self,
        c: &OAuthCredential,
        p: &Provider,
        use_proxy: bool,
    ) -> Result<OAuthCredential, TokenError> {
        let form = c.refresh_form()?;
        let req = UpstreamRequest {
            url: c.token_uri().to_string(),
            headers: vec![
                (
                    "content-type".into(),
                    "application/x-www-form-urlencoded".into(),
                ),
                ("accept".into(), "application/json".into()),
            ],
            body: Bytes::from(form),
            proxy_url: if use_proxy { p.proxy_url.clone() } else { None },
            header_timeout: REFRESH_TIMEOUT,
        };
        let call = async {
            let mut resp = self.upstream.post(req).await.map_err(|f| {
                TokenError(format!(
                    "the OAuth token endpoint could not be reached: {}",
                    f.message
                ))
            })?;
            let mut body = Vec::new();
            while let Some(chunk) = resp.body.next().await {
                let chunk = chunk.map_err(|f| {
                    TokenError(format!("the OAuth token answer broke off: {}", f.message))
                })?;
                if body.len() + chunk.len() > MAX_TOKEN_ANSWER {
                    return Err(TokenError("the OAuth token answer is too large".into()));
                }
                body.extend_from_slice(&chunk);
            }
            Ok((resp.status, body))
        };
        let (status, body) = tokio::time::timeout(REFRESH_TIMEOUT, call)
            .await
            .map_err(|_| TokenError("the OAuth token endpoint did not answer in time".into()))??;
        if !(200..300).contains(&status) {
            return Err(TokenError(format!(
                "the OAuth token refresh was refused ({status}{})",
                oauth_error_code(&body)
                    .map(|c| format!(", {c}"))
                    .unwrap_or_default()
            )));
        }
        let fresh = c.refreshed(&body, self.clock.now())?;
        tracing::info!(
            provider_id = p.id,
            "refreshed a provider's OAuth access token"
        );
        Ok(fresh)
    }

    async fn persist(&self, provider_id: i64, c: &OAuthCredential) {
        let Some(store) = &self.store else { return };
        if let Err(e) = store.set_provider_api_key(provider_id, &c.to_json()).await {
            tracing::warn!(provider_id, error = %e, "a refreshed OAuth credential could not be stored; this instance keeps it in memory");
        }
    }
}

/// The RFC 6749 `error` code of a token endpoint's refusal (`invalid_grant`, …): a short
/// token of known characters, never the rest of the answer.
fn oauth_error_code(body: &[u8]) -> Option<String> {
    let v: serde_json::Value = serde_json::from_slice(body).ok()?;
    let code = v.get("error")?.as_str()?;
    (code.len() <= 64 && code.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_'))
        .then(|| code.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_oauth_error_code_is_kept() {
        assert_eq!(
            oauth_error_code(br#"{"error":"invalid_grant","error_description":"Bad Request"}"#),
            Some("invalid_grant".into())
        );
        assert_eq!(oauth_error_code(br#"{"error":"ya29 secret text"}"#), None);
        assert_eq!(oauth_error_code(b"<html>"), None);
    }
}
