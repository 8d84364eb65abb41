//! Upstream URLs parsed against a remembered origin. Every attempt sends to
//! `scheme://host[:port]` of a provider plus a path; parsing the whole string each time ran the
//! host through IDNA processing again, about 4 % of the proxy's instructions per request
//! (callgrind). The parsed origin is kept and the path and query are joined to it, which gives
//! the URL a full parse gives (same normalisation of the path and query).

use std::collections::HashMap;
use std::sync::RwLock;

use url::Url;

/// Most origins remembered. Bound: providers' distinct origins (a few, rarely a hundred);
/// past it URLs are parsed whole, as before.
const ORIGINS_CAP: usize = 1024;

/// Parsed origins by their text (`scheme://authority`).
#[derive(Default)]
pub struct OriginCache {
    origins: RwLock<HashMap<String, Url>>,
}

impl OriginCache {
    /// `Url::parse(full)`, with the origin's part taken from the cache.
    pub fn parse(&self, full: &str) -> Result<Url, url::ParseError> {
        let Some((origin, rest)) = split_origin(full) else {
            return Url::parse(full);
        };
        if let Ok(map) = self.origins.read()
            && let Some(base) = map.get(origin)
        {
            return base.join(rest);
        }
        let base = Url::parse(origin)?;
        let url = base.join(rest)?;
        if let Ok(mut map) = self.origins.write()
            && map.len() < ORIGINS_CAP
        {
            map.entry(origin.to_owned()).or_insert(base);
        }
        Ok(url)
    }
}

/// `(scheme://authority, /path…)` when `full` is a plain absolute URL whose rest is a
/// path-absolute reference that joins exactly like the full parse; `None` for anything else
/// (no path, a rest starting `//` or `/\`, which a join would read as a new authority, or an
/// authority holding characters a full parse treats specially).
fn split_origin(full: &str) -> Option<(&str, &str)> {
    let authority_at = full.find("://")? + 3;
    let path_at = authority_at + full[authority_at..].find('/')?;
    let (origin, rest) = full.split_at(path_at);
    let scheme = &origin[..authority_at - 3];
    let authority = &origin[authority_at..];
    if !matches!(scheme, "http" | "https")
        || authority.is_empty()
        || authority.contains(['?', '#', '\\', '@', ' ', '\t', '\n', '\r'])
        || matches!(rest.as_bytes().get(1), Some(b'/' | b'\\'))
    {
        return None;
    }
    Some((origin, rest))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cached_parses_equal_full_parses() {
        let cache = OriginCache::default();
        let urls = [
            "https://api.anthropic.com/v1/messages?beta=true",
            "https://api.anthropic.com/v1/messages",
            "https://api.anthropic.com/v1/messages/count_tokens?beta=true",
            "http://127.0.0.1:8080/api/v1/chat/completions",
            "http://127.0.0.1:8080/a/../b/./c?x=1&y=%20z#frag",
            "http://[::1]:9000/v1/responses",
            "https://Bücher.example/v1/messages?q=ü",
            "https://EXAMPLE.com:443/v1//messages",
            "https://example.com/v1/models/gemini:streamGenerateContent?alt=sse",
            "https://example.com/ spaced path?a b",
            "https://example.com//evil.com/x",
            "https://example.com/\\evil.com/x",
            "https://user:pass@example.com/v1/messages",
            "https://example.com?q=1",
            "https://example.com",
            "not a url",
            "https:///v1/messages",
            "socks5://proxy.example:1080/path",
        ];
        for round in 0..2 {
            for u in urls {
                let got = cache.parse(u).map(|u| u.to_string());
                let want = Url::parse(u).map(|u| u.to_string());
                assert_eq!(got, want, "round {round}: {u}");
            }
        }
    }

    #[test]
    fn origins_are_bounded() {
        let cache = OriginCache::default();
        for i in 0..(ORIGINS_CAP + 50) {
            let u = format!("http://h{i}.example/v1/messages");
            assert_eq!(cache.parse(&u).map(|u| u.to_string()), Ok(u));
        }
        let held = cache.origins.read().map(|m| m.len()).unwrap_or(usize::MAX);
        assert_eq!(held, ORIGINS_CAP);
    }
}
