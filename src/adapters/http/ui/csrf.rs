//! Cross-site request refusal for cookie-authenticated writes. Browsers mark every request with
//! `Sec-Fetch-Site` (current ones) or at least `Origin` on a POST/PUT/PATCH/DELETE; a write whose
//! marks say it came from another site is refused. A request with neither header did not come
//! from a browser form or script (no browser omits both on a write), so it is allowed.

use poem::http::{HeaderMap, Method};

/// True when a request may change state under a session cookie.
pub fn same_origin_write(method: &Method, headers: &HeaderMap) -> bool {
    if matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS) {
        return true;
    }
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    if let Some(site) = header("sec-fetch-site") {
        return matches!(site, "same-origin" | "none");
    }
    match header("origin") {
        None => true,
        Some(origin) => {
            let Some(host) = header("x-forwarded-host").or_else(|| header("host")) else {
                return false;
            };
            let origin_host = origin
                .strip_prefix("https://")
                .or_else(|| origin.strip_prefix("http://"));
            origin_host.is_some_and(|h| h.eq_ignore_ascii_case(host))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, v.parse().unwrap());
        }
        h
    }

    #[test]
    fn reads_are_always_allowed() {
        let h = headers(&[("sec-fetch-site", "cross-site")]);
        assert!(same_origin_write(&Method::GET, &h));
    }

    #[test]
    fn fetch_metadata_decides_first() {
        for (site, ok) in [
            ("same-origin", true),
            ("none", true),
            ("same-site", false),
            ("cross-site", false),
        ] {
            let mut h = headers(&[("host", "cch.local:23000")]);
            h.insert("sec-fetch-site", site.parse().unwrap());
            assert_eq!(same_origin_write(&Method::POST, &h), ok, "{site}");
        }
    }

    #[test]
    fn origin_must_match_host() {
        let ok = headers(&[
            ("host", "cch.local:23000"),
            ("origin", "http://cch.local:23000"),
        ]);
        assert!(same_origin_write(&Method::PATCH, &ok));
        let bad = headers(&[
            ("host", "cch.local:23000"),
            ("origin", "https://evil.example"),
        ]);
        assert!(!same_origin_write(&Method::DELETE, &bad));
        let null = headers(&[("host", "cch.local:23000"), ("origin", "null")]);
        assert!(!same_origin_write(&Method::POST, &null));
        assert!(same_origin_write(&Method::POST, &HeaderMap::new()));
    }
}
