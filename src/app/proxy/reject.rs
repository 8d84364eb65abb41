//! Requests refused before routing (no key, bad key, body too large, body not JSON, …): each is
//! counted in `/metrics` by a fixed reason, and, when the request presented a valid key, leaves
//! a request-log row so the key's owner and admins see the failed call. Requests without a
//! valid key are only counted: they cannot fill the database.
//!
//! [`ProxyService::record_rejection`] is the one entry point, called both by the HTTP front
//! (401/403 from the request head, 413/503 while reading the body) and by the proxy pipeline
//! (400 for a body it cannot route).

use std::sync::atomic::{AtomicU64, Ordering};

use rust_decimal::Decimal;

use crate::domain::format::ClientFormat;
use crate::domain::request_log::RequestLog;

use super::{ProxyResponse, ProxyService};

/// Why a request was refused before routing. A fixed set: these are the only values of the
/// `reason` label in `/metrics`, never anything the client sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RejectReason {
    /// No key at all (401).
    MissingKey,
    /// A key that matches no user's key (401).
    InvalidKey,
    /// A known key, but it or its user is disabled or expired (403).
    KeyRefused,
    /// The body is over `MAX_BODY_BYTES` (413).
    BodyTooLarge,
    /// Too many request bodies held at once (503).
    BodyBudgetFull,
    /// The body could not be read off the connection (400).
    BodyUnreadable,
    /// The body is not a JSON object, or a routing field has the wrong type, e.g. `stream` (400).
    InvalidBody,
    /// No model in the path or the body (400).
    MissingModel,
    /// Shutdown's drain time ended while the request still waited for its answer (503).
    ShuttingDown,
    /// The user's text broke a sensitive-word rule (400).
    SensitiveWord,
}

impl RejectReason {
    /// Every reason, in `/metrics` order.
    pub const ALL: [Self; 10] = [
        Self::MissingKey,
        Self::InvalidKey,
        Self::KeyRefused,
        Self::BodyTooLarge,
        Self::BodyBudgetFull,
        Self::BodyUnreadable,
        Self::InvalidBody,
        Self::MissingModel,
        Self::ShuttingDown,
        Self::SensitiveWord,
    ];

    /// The label value and the tag at the start of the log row's error message.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::MissingKey => "missing_key",
            Self::InvalidKey => "invalid_key",
            Self::KeyRefused => "key_refused",
            Self::BodyTooLarge => "body_too_large",
            Self::BodyBudgetFull => "body_budget_full",
            Self::BodyUnreadable => "body_unreadable",
            Self::InvalidBody => "invalid_body",
            Self::MissingModel => "missing_model",
            Self::ShuttingDown => "shutting_down",
            Self::SensitiveWord => "sensitive_word",
        }
    }

    /// A fixed description, for rows whose refusal has no more specific message.
    pub fn describe(self) -> &'static str {
        match self {
            Self::MissingKey => "missing API key",
            Self::InvalidKey => "invalid API key",
            Self::KeyRefused => "the API key or its user is disabled or expired",
            Self::BodyTooLarge => "request body is larger than MAX_BODY_BYTES",
            Self::BodyBudgetFull => "too many request bodies in flight",
            Self::BodyUnreadable => "cannot read the request body",
            Self::InvalidBody => "request body is invalid",
            Self::MissingModel => "no model given",
            Self::ShuttingDown => "the server shut down before the answer was ready",
            Self::SensitiveWord => "blocked by a sensitive-word rule",
        }
    }

    fn index(self) -> usize {
        Self::ALL.iter().position(|r| *r == self).unwrap_or(0)
    }
}

/// Rejection counts by reason: one counter per [`RejectReason`] (bounded by the enum).
#[derive(Debug, Default)]
pub struct RejectionCounters {
    counts: [AtomicU64; RejectReason::ALL.len()],
}

impl RejectionCounters {
    /// Counts one rejection.
    pub fn add(&self, reason: RejectReason) {
        self.counts[reason.index()].fetch_add(1, Ordering::Relaxed);
    }

    /// `(reason, count)` for every reason, zeros included.
    pub fn snapshot(&self) -> impl Iterator<Item = (RejectReason, u64)> + '_ {
        RejectReason::ALL
            .iter()
            .map(|r| (*r, self.counts[r.index()].load(Ordering::Relaxed)))
    }
}

/// The user and key of a request whose key was recognised.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyIds {
    /// The key's user.
    pub user_id: i64,
    /// The key.
    pub key_id: i64,
}

/// The user and key a request was authenticated as, by [`ProxyService::precheck_key`] from the
/// request head; carried into the pipeline so the key is checked once per request.
#[derive(Debug, Clone)]
pub struct Caller {
    /// The key's user.
    pub user: std::sync::Arc<crate::domain::user::User>,
    /// The key.
    pub key: std::sync::Arc<crate::domain::api_key::ApiKey>,
}

impl Caller {
    /// The ids a refusal is logged under.
    pub fn ids(&self) -> KeyIds {
        KeyIds {
            user_id: self.user.id,
            key_id: self.key.id,
        }
    }
}

/// What is known about a refused request.
#[derive(Debug, Clone)]
pub struct Rejection<'a> {
    /// The client format (also the shape of the error answer).
    pub format: ClientFormat,
    /// The client path.
    pub endpoint: &'a str,
    /// Why it was refused.
    pub reason: RejectReason,
    /// The status the client gets.
    pub status: u16,
    /// The message the client gets.
    pub message: &'a str,
    /// The client's user agent, if any.
    pub user_agent: Option<&'a str>,
    /// The key's ids when the key was recognised; `None` keeps the request out of the log.
    pub key: Option<KeyIds>,
    /// The id the client got in `x-cch-request-id` (the log row's id), when the front made
    /// one; otherwise the row gets a fresh id.
    pub request_id: Option<&'a str>,
}

impl ProxyService {
    /// Counts a refused request and, when its key was recognised, queues its log row (status,
    /// `rejected (<reason>): <message>`, user and key; no provider, no cost).
    pub fn record_rejection(&self, rej: &Rejection<'_>) {
        self.metrics.rejected.add(rej.reason);
        self.metrics.observe(rej.status, false, 0);
        let Some(ids) = rej.key else { return };
        let row = RequestLog {
            id: 0,
            request_id: rej
                .request_id
                .map_or_else(super::new_request_id, str::to_string),
            created_at: self.clock.now(),
            user_id: Some(ids.user_id),
            key_id: Some(ids.key_id),
            provider_id: None,
            requested_model: None,
            forwarded_model: None,
            endpoint: rej.endpoint.chars().take(512).collect(),
            client_format: rej.format.as_str().to_string(),
            status_code: i32::from(rej.status),
            is_stream: false,
            input_tokens: 0,
            output_tokens: 0,
            cache_creation_5m_tokens: 0,
            cache_creation_1h_tokens: 0,
            cache_read_tokens: 0,
            cost_usd: Decimal::ZERO,
            cost_known: true,
            duration_ms: 0,
            ttfb_ms: None,
            provider_chain: serde_json::Value::Array(Vec::new()),
            session_id: None,
            user_agent: rej.user_agent.map(|s| s.chars().take(512).collect()),
            error_message: Some(format!(
                "rejected ({}): {}",
                rej.reason.as_str(),
                rej.message
            )),
        };
        self.logs.submit(row);
    }

    /// The pipeline stage that reads the routing fields of the body (model, stream): a body it
    /// cannot route is refused with 400 and recorded under the key.
    pub(super) fn routable_body(
        &self,
        req: &super::ClientRequest,
        key: KeyIds,
    ) -> Result<(super::body::RequestBody, String), ProxyResponse> {
        let refuse = |reason: RejectReason, msg: &str| {
            self.record_rejection(&Rejection {
                format: req.format,
                endpoint: &req.path,
                reason,
                status: 400,
                message: msg,
                user_agent: req.header("user-agent"),
                key: Some(key),
                request_id: Some(&req.request_id),
            });
            ProxyResponse::error(
                req.format,
                crate::domain::client_error::GatewayErrorKind::InvalidRequest,
                msg,
            )
        };
        let body = super::body::RequestBody::parse(req.body.clone())
            .map_err(|msg| refuse(RejectReason::InvalidBody, &msg))?;
        let Some(model) = req.path_model.clone().or_else(|| body.head.model.clone()) else {
            return Err(refuse(
                RejectReason::MissingModel,
                "model: a model name (string) is required",
            ));
        };
        if model.chars().count() > super::MAX_MODEL_NAME_CHARS {
            let msg = format!(
                "model: a model name is at most {} characters",
                super::MAX_MODEL_NAME_CHARS
            );
            return Err(refuse(RejectReason::InvalidBody, &msg));
        }
        Ok((body, model))
    }

    /// The key check from the request head alone (see [`ProxyService::precheck_key`]) with the
    /// refusal recorded: 401 (counted only) or 403 (counted and logged under the key).
    pub(super) fn checked_auth(
        &self,
        snap: &crate::app::snapshot::ConfigSnapshot,
        api_key: Option<&str>,
        format: ClientFormat,
        endpoint: &str,
        user_agent: Option<&str>,
        request_id: Option<&str>,
    ) -> Result<
        (
            std::sync::Arc<crate::domain::user::User>,
            std::sync::Arc<crate::domain::api_key::ApiKey>,
        ),
        ProxyResponse,
    > {
        let err = match self.authenticate(snap, api_key, format) {
            Ok(v) => return Ok(v),
            Err(e) => e,
        };
        let known = api_key
            .filter(|k| !k.is_empty())
            .and_then(|k| snap.keys_by_hash.get(&crate::domain::api_key::hash_key(k)))
            .map(|k| KeyIds {
                user_id: k.user_id,
                key_id: k.id,
            });
        let reason = match (err.status, api_key.filter(|k| !k.is_empty())) {
            (403, _) => RejectReason::KeyRefused,
            (_, None) => RejectReason::MissingKey,
            _ => RejectReason::InvalidKey,
        };
        self.record_rejection(&Rejection {
            format,
            endpoint,
            reason,
            status: err.status,
            message: reason.describe(),
            user_agent,
            // Only a refused (403) key is worth a row; an unknown key never is.
            key: known.filter(|_| reason == RejectReason::KeyRefused),
            request_id,
        });
        Err(err)
    }
}
