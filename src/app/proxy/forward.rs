//! Building the upstream request: URL join, header filtering, provider credentials.

use crate::domain::provider::{Provider, ProviderType};

/// Hop-by-hop and credential headers never forwarded upstream, plus headers that would change
/// the bytes we must parse (`accept-encoding`) or leak client details.
const DROP_REQUEST_HEADERS: &[&str] = &[
    "host",
    "content-length",
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "proxy-connection",
    "te",
    "trailer",
    "trailers",
    "transfer-encoding",
    "upgrade",
    "authorization",
    "x-api-key",
    "x-goog-api-key",
    "accept-encoding",
    "cookie",
    "forwarded",
    "x-forwarded-for",
    "x-forwarded-host",
    "x-forwarded-proto",
    "x-real-ip",
];

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

/// The headers sent upstream: the client's minus dropped ones, plus the provider's credentials.
pub fn upstream_headers(client: &[(String, String)], provider: &Provider) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = client
        .iter()
        .filter(|(k, _)| !DROP_REQUEST_HEADERS.contains(&k.as_str()))
        .cloned()
        .collect();
    if !out.iter().any(|(k, _)| k == "content-type") {
        out.push(("content-type".into(), "application/json".into()));
    }
    match provider.provider_type {
        ProviderType::Claude => {
            out.push(("x-api-key".into(), provider.api_key.clone()));
            if !out.iter().any(|(k, _)| k == "anthropic-version") {
                out.push(("anthropic-version".into(), "2023-06-01".into()));
            }
        }
        ProviderType::ClaudeAuth => {
            out.push((
                "authorization".into(),
                format!("Bearer {}", provider.api_key),
            ));
            if !out.iter().any(|(k, _)| k == "anthropic-version") {
                out.push(("anthropic-version".into(), "2023-06-01".into()));
            }
        }
        ProviderType::Gemini => out.push(("x-goog-api-key".into(), provider.api_key.clone())),
        ProviderType::Codex | ProviderType::OpenAiCompatible | ProviderType::GeminiCli => {
            out.push((
                "authorization".into(),
                format!("Bearer {}", provider.api_key),
            ));
        }
    }
    out
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
