//! Active sessions for the admin API and console: listed from the shared counters store (so
//! every instance sees the sessions of all), named from the config snapshot, and ended on
//! demand (binding, listing entry and concurrent-session slots dropped).

use crate::domain::session::sanitize_session_id;
use crate::ports::counters::{ActiveSession, SessionFilter};

use super::context::AppContext;

/// Default number of sessions a listing returns.
pub const DEFAULT_SESSION_LIST: usize = 100;

/// One active session with the names of its user, key and provider (when still configured).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionView {
    /// What the store keeps.
    pub session: ActiveSession,
    /// The user's name.
    pub user_name: Option<String>,
    /// The key's name.
    pub key_name: Option<String>,
    /// The bound provider's name.
    pub provider_name: Option<String>,
}

/// Why a sessions call failed.
#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    /// No such active session.
    #[error("session not found")]
    NotFound,
    /// The counters or limits store failed.
    #[error("unavailable: {0}")]
    Unavailable(String),
}

fn ttl_ms(ctx: &AppContext) -> i64 {
    i64::try_from(ctx.settings.session_ttl.as_millis()).unwrap_or(i64::MAX)
}

/// Active sessions passing `filter`, newest first, named.
pub async fn list(
    ctx: &AppContext,
    filter: &SessionFilter,
) -> Result<Vec<SessionView>, SessionError> {
    let now_ms = ctx.clock.now().timestamp_millis();
    let sessions = ctx
        .counters
        .list_sessions(now_ms, ttl_ms(ctx), filter)
        .await
        .map_err(|e| SessionError::Unavailable(e.to_string()))?;
    let snap = ctx.snapshot.get();
    Ok(sessions
        .into_iter()
        .map(|s| SessionView {
            user_name: s
                .user_id
                .and_then(|id| snap.users.get(&id))
                .map(|u| u.name.clone()),
            key_name: s
                .key_id
                .and_then(|id| snap.keys_by_id.get(&id))
                .map(|k| k.name.clone()),
            provider_name: s
                .provider_id
                .and_then(|id| snap.provider(id))
                .map(|p| p.name.clone()),
            session: s,
        })
        .collect())
}

/// Ends a session: drops its provider binding and listing entry, and frees its
/// concurrent-session slots (its next request starts a new binding and takes a slot again).
pub async fn end(ctx: &AppContext, id: &str) -> Result<ActiveSession, SessionError> {
    if sanitize_session_id(id).as_deref() != Some(id) {
        return Err(SessionError::NotFound);
    }
    let ended = ctx
        .counters
        .end_session(id)
        .await
        .map_err(|e| SessionError::Unavailable(e.to_string()))?
        .ok_or(SessionError::NotFound)?;
    if let Some(limits) = &ctx.limits {
        limits
            .release_session(id, ended.user_id, ended.key_id)
            .await
            .map_err(|e| SessionError::Unavailable(e.to_string()))?;
    }
    tracing::info!(session = id, "session ended by an admin");
    Ok(ended)
}
