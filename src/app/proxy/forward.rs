//! Building the upstream request: URL join, header filtering, provider credentials.

use crate::domain::provider::{Provider, ProviderType};
use crate::domain::request_shaping::body_asks_1h_ttl;

/// Client headers forwarded upstream, by exact name: what the official clients and SDKs send
/// that a provider may use (see `cli-traffic.md`). Anything else (hop-by-hop headers, the
/// client's own credentials, cookies, proxy and forwarding headers, arbitrary custom headers)
/// stays at the gateway.
const FORWARD_EXACT: &[&str] = &[
    "accept",
    "content-type",
    "user-agent",
    "x-claude-code-session-id",
    "originator",
    "session-id",
    "session_id",
    "thread-id",
    "conversation_id",
    "x-client-request-id",
    "x-goog-api-client",
];

/// Header families forwarded upstream, by name prefix: Anthropic's versions and betas, the
/// Stainless SDKs' telemetry (`x-stainless-retry-count`, ...), OpenAI's beta/organization
/// headers and Codex's window/turn headers.
const FORWARD_PREFIXES: &[&str] = &["anthropic-", "x-stainless-", "openai-", "x-codex-"];

/// Largest value of one forwarded header; a longer one is dropped, not cut (a cut value would
/// be wrong). Real values are far shorter; an oversized one would only earn a provider's 431.
pub const MAX_FORWARDED_HEADER_BYTES: usize = 8 * 1024;

/// Whether a client header (lower-case name) is passed to the provider.
fn forwarded(name: &str, value: &str) -> bool {
    value.len() <= MAX_FORWARDED_HEADER_BYTES
        && (FORWARD_EXACT.contains(&name) || FORWARD_PREFIXES.iter().any(|p| name.starts_with(p)))
}

/// Response headers not passed back to the client (hop-by-hop, or recomputed by our server).
const DROP_RESPONSE_HEADERS: &[&str] = &[
    "connection",
    "keep-alive",
    "transfer-encoding",
    "content-length",
    "te",
    "trailer",
    "upgrade",
    "proxy-authenticate",
    "proxy-connection",
    "set-cookie",
];

/// Joins a provider base URL and an API path: trailing slashes are ignored, a path prefix is
/// kept, and a base that already ends in `/v1` does not get a second `/v1`.
pub fn join_url(base_url: &str, path: &str, query: Option<&str>) -> String {
    let base = base_url.trim_end_matches('/');
    let path = if base.ends_with("/v1") {
        path.strip_prefix("/v1").unwrap_or(path)
    } else {
        path
    };
    let mut url = format!("{base}{path}");
    if let Some(q) = query.filter(|q| !q.is_empty()) {
        url.push('?');
        url.push_str(q);
    }
    url
}

/// The headers sent upstream: the client's allowed ones (`forwarded`), shaped by the provider
/// (its `anthropic-beta` policy, given whether `body` asks for the 1-hour cache TTL, and its
/// custom headers, which replace a client header of the same name), plus its credentials
/// (which no custom header can replace). `secret` is what the provider's key resolves to
/// (`ProviderTokens`): the key itself, or an OAuth access token, which is always a Bearer.
pub fn upstream_headers(
    client: &[(String, String)],
    provider: &Provider,
    secret: &str,
    body: &[u8],
) -> Vec<(String, String)> {
    let shaping = &provider.shaping;
    let client_beta = client
        .iter()
        .find(|(k, _)| k == "anthropic-beta")
        .map(|(_, v)| v.as_str());
    let mut out: Vec<(String, String)> = client
        .iter()
        .filter(|(k, v)| {
            forwarded(k, v) && k != "anthropic-beta" && !shaping.custom_headers.contains_key(k)
        })
        .cloned()
        .collect();
    if let Some(beta) = shaping.beta_header(client_beta, body_asks_1h_ttl(body)) {
        out.push(("anthropic-beta".into(), beta));
    }
    out.extend(
        shaping
            .custom_headers
            .iter()
            .map(|(k, v)| (k.clone(), v.clone())),
    );
    if !out.iter().any(|(k, _)| k == "content-type") {
        out.push(("content-type".into(), "application/json".into()));
    }
    let bearer = || ("authorization".to_string(), format!("Bearer {secret}"));
    match provider.provider_type {
        ProviderType::Claude => {
            out.push(("x-api-key".into(), secret.to_string()));
            if !out.iter().any(|(k, _)| k == "anthropic-version") {
                out.push(("anthropic-version".into(), "2023-06-01".into()));
            }
        }
        ProviderType::ClaudeAuth => {
            out.push(bearer());
            if !out.iter().any(|(k, _)| k == "anthropic-version") {
                out.push(("anthropic-version".into(), "2023-06-01".into()));
            }
        }
        ProviderType::Gemini if !is_oauth(provider) => {
            out.push(("x-goog-api-key".into(), secret.to_string()))
        }
        ProviderType::GeminiCli => {
            out.push(bearer());
            if !out.iter().any(|(k, _)| k == "x-goog-api-client") {
                out.push(("x-goog-api-client".into(), "GeminiCLI/1.0".into()));
            }
        }
        ProviderType::Gemini | ProviderType::Codex | ProviderType::OpenAiCompatible => {
            out.push(bearer());
        }
    }
    out
}

/// Whether the provider's key is an OAuth credential (its secret is then an access token).
fn is_oauth(provider: &Provider) -> bool {
    provider.api_key.trim_start().starts_with('{')
}

/// The upstream response headers passed on to the client.
pub fn client_response_headers(upstream: &[(String, String)]) -> Vec<(String, String)> {
    upstream
        .iter()
        .filter(|(k, _)| !DROP_RESPONSE_HEADERS.contains(&k.as_str()))
        .cloned()
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_known_bounded_client_headers_are_forwarded() {
        for name in [
            "anthropic-beta",
            "anthropic-version",
            "x-stainless-retry-count",
            "user-agent",
            "x-claude-code-session-id",
            "originator",
            "session-id",
            "x-codex-turn-metadata",
            "openai-beta",
        ] {
            assert!(forwarded(name, "v"), "{name}");
        }
        for name in [
            "x-big",
            "authorization",
            "x-api-key",
            "x-goog-api-key",
            "cookie",
            "host",
            "connection",
            "transfer-encoding",
            "accept-encoding",
            "x-forwarded-for",
            "proxy-authorization",
        ] {
            assert!(!forwarded(name, "v"), "{name}");
        }
        assert!(!forwarded("anthropic-beta", &"x".repeat(64 * 1024)));
    }

    #[test]
    fn joins_with_or_without_slashes_and_prefixes() {
        assert_eq!(
            join_url("https://a.com", "/v1/messages", None),
            "https://a.com/v1/messages"
        );
        assert_eq!(
            join_url("https://a.com/", "/v1/messages", Some("beta=true")),
            "https://a.com/v1/messages?beta=true"
        );
        assert_eq!(
            join_url("https://a.com/api/", "/v1/messages", None),
            "https://a.com/api/v1/messages"
        );
        assert_eq!(
            join_url("https://a.com/api/v1", "/v1/messages", None),
            "https://a.com/api/v1/messages"
        );
        assert_eq!(
            join_url("https://a.com/api/v1/", "/v1/messages", Some("")),
            "https://a.com/api/v1/messages"
        );
    }
}
