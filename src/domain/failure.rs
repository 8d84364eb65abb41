//! What a failed upstream attempt means: retry elsewhere, count against the provider's breaker,
//! or hand the error to the client as is.
//!
//! Classes follow the original: a client abort is nobody's failure; an error the request itself
//! caused (prompt too long, bad parameter…) goes straight back to the client; a 404 fails over
//! without blaming the provider; other upstream errors fail over and count for the breaker; network
//! errors fail over and count only when the operator asks for it.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// How a failed attempt is treated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorClass {
    /// The client went away: no retry, not a failure.
    ClientAbort,
    /// The request itself is at fault: returned to the client, no retry, not a failure.
    NonRetryableClientError,
    /// 404 from the upstream: fail over, not a breaker failure.
    NotFound,
    /// Any other upstream error status: retry, fail over, counts for the breaker.
    ProviderError,
    /// Network, DNS, TLS, timeout: retry, fail over, counts only if configured.
    SystemError,
}

impl ErrorClass {
    /// Whether the proxy should try again (same or another provider) after this failure.
    pub fn is_retryable(self) -> bool {
        matches!(
            self,
            Self::NotFound | Self::ProviderError | Self::SystemError
        )
    }
}

/// How an error rule's pattern is compared with the upstream message (case-insensitively).
/// A `Regex` kind is planned once a regex crate is allowed in the domain.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MatchKind {
    /// The message contains the pattern.
    Contains,
    /// The trimmed message equals the pattern.
    Exact,
}

/// An admin-editable rule that recognises an upstream error and decides its class, optionally
/// replacing the status and message the client sees.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorRule {
    /// The text to look for.
    pub pattern: String,
    /// How to compare.
    pub match_kind: MatchKind,
    /// Only for this upstream status, when set.
    pub status: Option<u16>,
    /// The class a match gives.
    pub class: ErrorClass,
    /// Status returned to the client instead of the upstream's (400–599).
    pub override_status: Option<u16>,
    /// Message returned to the client instead of the upstream's.
    pub override_message: Option<String>,
}

impl ErrorRule {
    /// Whether the rule applies to an upstream `status` with (lower-cased) `message`.
    pub fn matches(&self, status: u16, message_lower: &str) -> bool {
        if self.status.is_some_and(|s| s != status) {
            return false;
        }
        let pat = self.pattern.trim().to_lowercase();
        if pat.is_empty() {
            return false;
        }
        match self.match_kind {
            MatchKind::Contains => message_lower.contains(&pat),
            MatchKind::Exact => message_lower.trim() == pat,
        }
    }
}

/// What the client should see instead of the upstream's answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorOverride {
    /// Replacement status, if any.
    pub status: Option<u16>,
    /// Replacement message, if any.
    pub message: Option<String>,
}

/// The verdict on one failed HTTP attempt.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Classified {
    /// How to treat it.
    pub class: ErrorClass,
    /// The pattern of the rule that decided it, if one did.
    pub rule_matched: Option<String>,
    /// The override from the matching rule, if it has one.
    pub override_: Option<ErrorOverride>,
    /// The upstream's error message (extracted from its JSON, else the capped raw text).
    pub message: String,
}

/// Longest upstream message kept (in characters).
pub const MAX_ERROR_MESSAGE_CHARS: usize = 1000;

fn cap(s: &str) -> String {
    match s.char_indices().nth(MAX_ERROR_MESSAGE_CHARS) {
        Some((i, _)) => format!("{}…", s.get(..i).unwrap_or(s)),
        None => s.to_string(),
    }
}

fn message_in(v: &Value) -> Option<String> {
    if let Some(arr) = v.as_array() {
        return arr.iter().find_map(message_in);
    }
    let err = v.get("error");
    let candidates = [
        err.and_then(|e| e.get("message")),
        err.filter(|e| e.is_string()),
        v.get("message"),
        v.get("detail"),
    ];
    candidates
        .into_iter()
        .flatten()
        .find_map(|m| m.as_str().map(str::to_string))
}

/// The error message of an upstream body: `error.message` of the Claude, OpenAI and Gemini
/// shapes (also `error` as a string, `message`, `detail`, or a Gemini array), else the raw text;
/// capped at [`MAX_ERROR_MESSAGE_CHARS`].
pub fn extract_error_message(body_text: &str) -> String {
    let parsed = serde_json::from_str::<Value>(body_text).ok();
    let msg = parsed.as_ref().and_then(message_in);
    cap(msg.as_deref().unwrap_or(body_text.trim()))
}

fn valid_override_status(s: u16) -> bool {
    (400..=599).contains(&s)
}

/// Classifies a failed HTTP answer from an upstream. The first matching rule decides, except that
/// a rule can make an error a non-retryable client error only for 4xx statuses. Without a rule:
/// 404 → not found, anything else → provider error.
pub fn classify_http(status: u16, body_text: &str, rules: &[ErrorRule]) -> Classified {
    let message = extract_error_message(body_text);
    let lower = message.to_lowercase();
    let is_4xx = (400..500).contains(&status);
    let rule = rules.iter().find(|r| {
        r.matches(status, &lower) && (r.class != ErrorClass::NonRetryableClientError || is_4xx)
    });
    if let Some(r) = rule {
        let status = r.override_status.filter(|s| valid_override_status(*s));
        let msg = r.override_message.clone().filter(|m| !m.trim().is_empty());
        let override_ = (status.is_some() || msg.is_some()).then_some(ErrorOverride {
            status,
            message: msg,
        });
        return Classified {
            class: r.class,
            rule_matched: Some(r.pattern.clone()),
            override_,
            message,
        };
    }
    let class = if status == 404 {
        ErrorClass::NotFound
    } else {
        ErrorClass::ProviderError
    };
    Classified {
        class,
        rule_matched: None,
        override_: None,
        message,
    }
}

/// How a connection-level attempt failed before an HTTP answer arrived.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TransportFailure {
    /// TCP connection refused or unreachable.
    Connect,
    /// The host name did not resolve.
    Dns,
    /// TLS handshake or certificate failure.
    Tls,
    /// First-byte, idle or total timeout.
    Timeout,
    /// Connection reset or closed mid-answer.
    Reset,
    /// The outbound proxy failed.
    Proxy,
    /// Malformed HTTP from the upstream.
    Protocol,
    /// Anything else below HTTP.
    Other,
}

/// Every transport failure is a system error (retry, fail over, breaker only if configured).
pub fn classify_transport(_kind: TransportFailure) -> ErrorClass {
    ErrorClass::SystemError
}

/// Whether a failure of `class` counts towards the provider's circuit breaker;
/// `network_errors_count` is `ENABLE_CIRCUIT_BREAKER_ON_NETWORK_ERRORS`.
pub fn counts_for_breaker(class: ErrorClass, network_errors_count: bool) -> bool {
    match class {
        ErrorClass::ProviderError => true,
        ErrorClass::SystemError => network_errors_count,
        ErrorClass::ClientAbort | ErrorClass::NonRetryableClientError | ErrorClass::NotFound => {
            false
        }
    }
}

#[path = "failure_rules.rs"]
mod rules;
pub use rules::builtin_error_rules;

#[cfg(test)]
#[path = "failure_tests.rs"]
mod tests;
