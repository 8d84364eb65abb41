//! What a failed upstream attempt means: retry elsewhere, count against the provider's breaker,
//! or hand the error to the client as is.
//!
//! Classes follow the original: a client abort is nobody's failure; an error the request itself
//! caused (prompt too long, bad parameter…) goes straight back to the client; a 404 fails over
//! without blaming the provider; other upstream errors fail over and count for the breaker; network
//! errors fail over and count only when the operator asks for it.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::error::ValidationError;

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
    /// The provider refused the request's thinking blocks (signatures issued elsewhere): strip
    /// them and retry once on the same provider; if that is not possible, the client's error.
    RectifyThinkingSignature,
}

impl ErrorClass {
    /// Whether a rule of this class describes the client's request (it applies to 4xx only).
    pub fn is_client_side(self) -> bool {
        matches!(
            self,
            Self::NonRetryableClientError | Self::RectifyThinkingSignature
        )
    }

    /// Whether the proxy should try again (same or another provider) after this failure.
    pub fn is_retryable(self) -> bool {
        matches!(
            self,
            Self::NotFound | Self::ProviderError | Self::SystemError
        )
    }
}

/// How an error rule's pattern is compared with the upstream message (case-insensitively).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MatchKind {
    /// The message contains the pattern.
    Contains,
    /// The trimmed message equals the pattern.
    Exact,
    /// The pattern is a regular expression found somewhere in the message.
    Regex,
}

impl MatchKind {
    /// The wire name (`contains`, `exact`, `regex`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Contains => "contains",
            Self::Exact => "exact",
            Self::Regex => "regex",
        }
    }

    /// Parses the wire name.
    pub fn parse(s: &str) -> Result<Self, ValidationError> {
        match s {
            "contains" => Ok(Self::Contains),
            "exact" => Ok(Self::Exact),
            "regex" => Ok(Self::Regex),
            _ => Err(ValidationError::new(
                "match_kind",
                "must be one of: contains, exact, regex",
            )),
        }
    }
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

/// Longest accepted rule pattern (characters).
pub const MAX_PATTERN_CHARS: usize = 500;
/// Largest compiled regex accepted (bytes), so a rule cannot exhaust memory.
const REGEX_SIZE_LIMIT: usize = 1 << 20;

fn compile_regex(pattern: &str) -> Result<regex::Regex, regex::Error> {
    regex::RegexBuilder::new(pattern)
        .case_insensitive(true)
        .size_limit(REGEX_SIZE_LIMIT)
        .build()
}

impl ErrorRule {
    /// Whether the rule applies to an upstream `status` with (lower-cased) `message`. A `Regex`
    /// rule never matches here: it must be compiled first (see [`ErrorRuleSet`]).
    pub fn matches(&self, status: u16, message_lower: &str) -> bool {
        self.matches_with(status, message_lower, None)
    }

    fn matches_with(&self, status: u16, message_lower: &str, re: Option<&regex::Regex>) -> bool {
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
            MatchKind::Regex => re.is_some_and(|re| re.is_match(message_lower)),
        }
    }

    /// Checks an admin-written rule: a non-empty pattern (a valid regex for `Regex`), a status
    /// of 100–599, a class of non-retryable client error or provider error, an override status
    /// of 400–599 and a message of at most [`MAX_ERROR_MESSAGE_CHARS`] characters.
    pub fn validate(&self) -> Result<(), ValidationError> {
        super::text::single_line("pattern", &self.pattern)?;
        if let Some(m) = &self.override_message {
            super::text::multi_line("override_message", m)?;
        }
        let pat = self.pattern.trim();
        if pat.is_empty() {
            return Err(ValidationError::new("pattern", "must not be empty"));
        }
        if pat.chars().count() > MAX_PATTERN_CHARS {
            return Err(ValidationError::new(
                "pattern",
                format!("must be at most {MAX_PATTERN_CHARS} characters"),
            ));
        }
        if self.match_kind == MatchKind::Regex {
            compile_regex(pat).map_err(|e| {
                ValidationError::new("pattern", format!("is not a valid regular expression: {e}"))
            })?;
        }
        if self.status.is_some_and(|s| !(100..=599).contains(&s)) {
            return Err(ValidationError::new(
                "status",
                "must be between 100 and 599",
            ));
        }
        if !matches!(
            self.class,
            ErrorClass::NonRetryableClientError
                | ErrorClass::ProviderError
                | ErrorClass::RectifyThinkingSignature
        ) {
            return Err(ValidationError::new(
                "class",
                "must be non_retryable_client_error, provider_error or \
                 rectify_thinking_signature",
            ));
        }
        if self
            .override_status
            .is_some_and(|s| !valid_override_status(s))
        {
            return Err(ValidationError::new(
                "override_status",
                "must be between 400 and 599",
            ));
        }
        if self
            .override_message
            .as_ref()
            .is_some_and(|m| m.chars().count() > MAX_ERROR_MESSAGE_CHARS)
        {
            return Err(ValidationError::new(
                "override_message",
                format!("must be at most {MAX_ERROR_MESSAGE_CHARS} characters"),
            ));
        }
        Ok(())
    }
}

/// Error rules ready for matching, in order (first match wins), with regexes compiled once.
#[derive(Debug, Clone, Default)]
pub struct ErrorRuleSet {
    rules: Vec<(ErrorRule, Option<regex::Regex>)>,
}

impl ErrorRuleSet {
    /// Compiles `rules`; a regex rule that does not compile is dropped (and reported by
    /// [`ErrorRuleSet::compile_reporting`]).
    pub fn compile(rules: Vec<ErrorRule>) -> Self {
        Self::compile_reporting(rules).0
    }

    /// Compiles `rules` and returns the patterns of the regex rules that did not compile.
    pub fn compile_reporting(rules: Vec<ErrorRule>) -> (Self, Vec<String>) {
        let mut bad = Vec::new();
        let mut out = Vec::with_capacity(rules.len());
        for r in rules {
            if r.match_kind == MatchKind::Regex {
                match compile_regex(r.pattern.trim()) {
                    Ok(re) => out.push((r, Some(re))),
                    Err(_) => bad.push(r.pattern),
                }
            } else {
                out.push((r, None));
            }
        }
        (Self { rules: out }, bad)
    }

    /// The rules, in matching order.
    pub fn rules(&self) -> impl Iterator<Item = &ErrorRule> {
        self.rules.iter().map(|(r, _)| r)
    }

    /// Number of rules.
    pub fn len(&self) -> usize {
        self.rules.len()
    }

    /// Whether there are no rules.
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    fn first_match(&self, status: u16, lower: &str) -> Option<&ErrorRule> {
        let is_4xx = (400..500).contains(&status);
        self.rules
            .iter()
            .find(|(r, re)| {
                r.matches_with(status, lower, re.as_ref()) && (!r.class.is_client_side() || is_4xx)
            })
            .map(|(r, _)| r)
    }
}

impl From<Vec<ErrorRule>> for ErrorRuleSet {
    fn from(rules: Vec<ErrorRule>) -> Self {
        Self::compile(rules)
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
    if let Some(summary) = html_summary(body_text) {
        return summary;
    }
    let parsed = serde_json::from_str::<Value>(body_text).ok();
    let msg = parsed.as_ref().and_then(message_in);
    cap(msg.as_deref().unwrap_or(body_text.trim()))
}

/// Longest page title kept from an upstream HTML error page (in characters).
const MAX_HTML_TITLE_CHARS: usize = 120;

/// An HTML error page (a relay's or a CDN's) is summarised by its title, never passed on whole.
fn html_summary(body_text: &str) -> Option<String> {
    let head = body_text.trim_start();
    let start = head.get(..head.len().min(64))?.to_ascii_lowercase();
    if !(start.starts_with("<!doctype html")
        || start.starts_with("<html")
        || start.starts_with("<head")
        || start.starts_with("<body"))
    {
        return None;
    }
    let lower = body_text.to_ascii_lowercase();
    let title = lower
        .find("<title")
        .and_then(|i| lower[i..].find('>').map(|j| i + j + 1))
        .and_then(|from| lower[from..].find("</title").map(|len| (from, from + len)))
        .and_then(|(a, b)| body_text.get(a..b))
        .map(|t| t.split_whitespace().collect::<Vec<_>>().join(" "))
        .filter(|t| !t.is_empty());
    Some(match title {
        Some(t) => {
            let t: String = t.chars().take(MAX_HTML_TITLE_CHARS).collect();
            format!("upstream answered with an HTML page: {t}")
        }
        None => "upstream answered with an HTML page".to_string(),
    })
}

fn valid_override_status(s: u16) -> bool {
    (400..=599).contains(&s)
}

/// Classifies a failed HTTP answer from an upstream. The first matching rule decides, except that
/// a rule can make an error a non-retryable client error only for 4xx statuses. Without a rule:
/// 404 → not found, 413 and 431 (the client's request too large) → non-retryable client error,
/// anything else → provider error.
pub fn classify_http(status: u16, body_text: &str, rules: &ErrorRuleSet) -> Classified {
    let message = extract_error_message(body_text);
    let lower = message.to_lowercase();
    let rule = rules.first_match(status, &lower);
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
    let class = match status {
        404 => ErrorClass::NotFound,
        // The client's own request was too large for the upstream (headers or body): another
        // provider or a retry would refuse it too, and the provider is not at fault.
        413 | 431 => ErrorClass::NonRetryableClientError,
        _ => ErrorClass::ProviderError,
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
        ErrorClass::ClientAbort
        | ErrorClass::NonRetryableClientError
        | ErrorClass::RectifyThinkingSignature
        | ErrorClass::NotFound => false,
    }
}

#[path = "failure_rules.rs"]
mod rules;
pub use rules::builtin_error_rules;

#[cfg(test)]
#[path = "failure_tests.rs"]
mod tests;

/// An error rule as stored and edited by admins.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredErrorRule {
    /// Database id (0 before insertion).
    pub id: i64,
    /// The rule itself.
    pub rule: ErrorRule,
    /// Free text for admins.
    pub description: String,
    /// Disabled rules are not applied.
    pub enabled: bool,
    /// Whether it is one of the shipped presets (restorable).
    pub is_preset: bool,
    /// Lower is tried first; ties by id. Presets use [`PRESET_PRIORITY`].
    pub priority: i32,
}

/// The priority of the shipped presets (admin rules default to 0, so they are tried first).
pub const PRESET_PRIORITY: i32 = 100;

/// The enabled rules of `stored`, in matching order (priority, then id).
pub fn active_rules(stored: &[StoredErrorRule]) -> Vec<ErrorRule> {
    let mut v: Vec<&StoredErrorRule> = stored.iter().filter(|r| r.enabled).collect();
    v.sort_by_key(|r| (r.priority, r.id));
    v.into_iter().map(|r| r.rule.clone()).collect()
}
