//! Per-provider request shaping (issue 12 item 8): extra headers merged into every upstream
//! request (never the credentials or the framing headers), and what happens to the client's
//! `anthropic-beta` flags (some relays reject betas they do not know): passed through,
//! dropped, or replaced by a configured list. The 1-hour cache TTL keeps its beta whatever the
//! policy, when the client asked for that TTL, since the request would fail without it.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::error::ValidationError;

/// The beta that enables `cache_control.ttl = "1h"`.
pub const EXTENDED_CACHE_TTL_BETA: &str = "extended-cache-ttl-2025-04-11";
/// Most custom headers per provider.
pub const MAX_CUSTOM_HEADERS: usize = 32;
/// Longest custom header value (bytes).
pub const MAX_HEADER_VALUE_BYTES: usize = 8 * 1024;

/// Header names a custom header may not set: credentials (set from the provider's key),
/// framing and hop-by-hop headers (set by the HTTP client), and `anthropic-beta` (set by the
/// beta policy).
const RESERVED: [&str; 15] = [
    "authorization",
    "x-api-key",
    "x-goog-api-key",
    "proxy-authorization",
    "host",
    "content-length",
    "content-encoding",
    "transfer-encoding",
    "connection",
    "keep-alive",
    "upgrade",
    "te",
    "trailer",
    "expect",
    "anthropic-beta",
];

/// What happens to the client's `anthropic-beta` flags.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BetaPolicy {
    /// Sent as the client sent them.
    #[default]
    Passthrough,
    /// Not sent.
    Drop,
    /// The configured list is sent instead.
    Replace,
}

impl BetaPolicy {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Passthrough => "passthrough",
            Self::Drop => "drop",
            Self::Replace => "replace",
        }
    }

    /// Parses the wire name.
    pub fn parse(s: &str) -> Result<Self, ValidationError> {
        match s {
            "passthrough" => Ok(Self::Passthrough),
            "drop" => Ok(Self::Drop),
            "replace" => Ok(Self::Replace),
            _ => Err(ValidationError::new(
                "anthropic_beta",
                "must be passthrough, drop or replace",
            )),
        }
    }
}

/// A provider's request shaping.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct RequestShaping {
    /// Header name (lower case) → value, added to every upstream request.
    #[serde(default)]
    pub custom_headers: BTreeMap<String, String>,
    /// The `anthropic-beta` policy.
    #[serde(default)]
    pub anthropic_beta: BetaPolicy,
    /// The flags sent under [`BetaPolicy::Replace`].
    #[serde(default)]
    pub anthropic_beta_list: Vec<String>,
}

fn is_token(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

impl RequestShaping {
    /// Lower-cases the header names (call before [`Self::validate`] and storing).
    pub fn normalize(&mut self) {
        let headers = std::mem::take(&mut self.custom_headers);
        self.custom_headers = headers
            .into_iter()
            .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
            .collect();
        for f in &mut self.anthropic_beta_list {
            *f = f.trim().to_string();
        }
        self.anthropic_beta_list.retain(|f| !f.is_empty());
    }

    /// Checks names (HTTP tokens, none reserved), values (one line, bounded) and the beta list.
    pub fn validate(&self) -> Result<(), ValidationError> {
        if self.custom_headers.len() > MAX_CUSTOM_HEADERS {
            return Err(ValidationError::new(
                "custom_headers",
                format!("at most {MAX_CUSTOM_HEADERS} headers"),
            ));
        }
        for (name, value) in &self.custom_headers {
            if !is_token(name) {
                return Err(ValidationError::new(
                    "custom_headers",
                    format!("`{name}` is not a valid header name"),
                ));
            }
            if RESERVED.contains(&name.as_str()) || name.starts_with("proxy-") {
                return Err(ValidationError::new(
                    "custom_headers",
                    format!(
                        "`{name}` cannot be set here (credentials come from the provider's key, \
                         framing from the HTTP client, anthropic-beta from its policy)"
                    ),
                ));
            }
            if value.len() > MAX_HEADER_VALUE_BYTES
                || value.bytes().any(|b| b == b'\r' || b == b'\n' || b == 0)
            {
                return Err(ValidationError::new(
                    "custom_headers",
                    format!("the value of `{name}` must be one line of at most 8 KiB"),
                ));
            }
        }
        for flag in &self.anthropic_beta_list {
            if !is_token(flag) {
                return Err(ValidationError::new(
                    "anthropic_beta_list",
                    format!("`{flag}` is not a valid beta name"),
                ));
            }
        }
        Ok(())
    }

    /// The `anthropic-beta` value to send, given the client's and whether the body asks for
    /// the 1-hour cache TTL.
    pub fn beta_header(&self, client: Option<&str>, wants_1h_ttl: bool) -> Option<String> {
        let client_flags: Vec<&str> = client
            .unwrap_or("")
            .split(',')
            .map(str::trim)
            .filter(|f| !f.is_empty())
            .collect();
        let mut flags: Vec<&str> = match self.anthropic_beta {
            BetaPolicy::Passthrough => client_flags.clone(),
            BetaPolicy::Drop => Vec::new(),
            BetaPolicy::Replace => self
                .anthropic_beta_list
                .iter()
                .map(String::as_str)
                .collect(),
        };
        let ttl_asked = wants_1h_ttl || client_flags.contains(&EXTENDED_CACHE_TTL_BETA);
        if ttl_asked && !flags.contains(&EXTENDED_CACHE_TTL_BETA) {
            flags.push(EXTENDED_CACHE_TTL_BETA);
        }
        (!flags.is_empty()).then(|| flags.join(","))
    }
}

/// Whether a request body asks for the 1-hour cache TTL (`"ttl": "1h"` in a `cache_control`).
pub fn body_asks_1h_ttl(body: &[u8]) -> bool {
    let mut rest = body;
    while let Some(i) = memchr::memmem::find(rest, b"\"ttl\"") {
        let after = &rest[i + 5..];
        let mut j = 0;
        while after.get(j).is_some_and(|b| b.is_ascii_whitespace()) {
            j += 1;
        }
        if after.get(j) == Some(&b':') {
            j += 1;
            while after.get(j).is_some_and(|b| b.is_ascii_whitespace()) {
                j += 1;
            }
            if after[j..].starts_with(b"\"1h\"") {
                return true;
            }
        }
        rest = after;
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shaping(policy: BetaPolicy, list: &[&str]) -> RequestShaping {
        RequestShaping {
            anthropic_beta: policy,
            anthropic_beta_list: list.iter().map(|s| s.to_string()).collect(),
            ..Default::default()
        }
    }

    #[test]
    fn beta_policies_and_the_cache_ttl_exception() {
        let client = Some("claude-code-20250219, interleaved-thinking-2025-05-14");
        let pass = shaping(BetaPolicy::Passthrough, &[]);
        assert_eq!(
            pass.beta_header(client, false).as_deref(),
            Some("claude-code-20250219,interleaved-thinking-2025-05-14")
        );
        let drop = shaping(BetaPolicy::Drop, &[]);
        assert_eq!(drop.beta_header(client, false), None);
        assert_eq!(
            drop.beta_header(client, true).as_deref(),
            Some(EXTENDED_CACHE_TTL_BETA)
        );
        let replace = shaping(BetaPolicy::Replace, &["context-1m-2025-08-07"]);
        assert_eq!(
            replace
                .beta_header(Some("x, extended-cache-ttl-2025-04-11"), false)
                .as_deref(),
            Some("context-1m-2025-08-07,extended-cache-ttl-2025-04-11")
        );
        assert_eq!(pass.beta_header(None, false), None);
    }

    #[test]
    fn reserved_and_malformed_headers_are_refused() {
        for name in [
            "authorization",
            "X-Api-Key",
            "host",
            "anthropic-beta",
            "proxy-foo",
            "bad name",
        ] {
            let mut s = RequestShaping::default();
            s.custom_headers.insert(name.into(), "v".into());
            s.normalize();
            assert!(s.validate().is_err(), "{name}");
        }
        let mut ok = RequestShaping::default();
        ok.custom_headers
            .insert(" X-Relay-Team ".into(), " blue ".into());
        ok.normalize();
        assert!(ok.validate().is_ok());
        assert_eq!(
            ok.custom_headers.get("x-relay-team").map(String::as_str),
            Some("blue")
        );
        let mut nl = RequestShaping::default();
        nl.custom_headers.insert("x-a".into(), "a\r\nb: c".into());
        assert!(nl.validate().is_err());
    }

    #[test]
    fn the_1h_ttl_is_found_in_cache_control() {
        assert!(body_asks_1h_ttl(
            br#"{"system":[{"type":"text","text":"x","cache_control":{"type":"ephemeral", "ttl" : "1h"}}]}"#
        ));
        assert!(!body_asks_1h_ttl(
            br#"{"cache_control":{"type":"ephemeral","ttl":"5m"}}"#
        ));
        assert!(!body_asks_1h_ttl(br#"{"text":"ttl 1h"}"#));
    }
}
