//! A client's query string, parsed once: the API key it may carry, and what is forwarded
//! upstream. The two must agree, or a key that authenticated could reach the provider: a
//! parameter whose name decodes to `key` in any letter case (`key`, `KEY`, `%6Bey`, `k%65y`)
//! is the client's key and is never forwarded, and neither is any parameter whose value is the
//! key the client presented (from a header or the query).

use std::borrow::Cow;

/// The parts of a client query string cch cares about.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct ClientQuery {
    /// The first `key` parameter's value (decoded), if any.
    pub key: Option<String>,
    /// Every other parameter, re-encoded; `None` when nothing is left.
    pub forwarded: Option<String>,
}

fn is_key_name(name: &str) -> bool {
    name.eq_ignore_ascii_case("key")
}

/// The key carried by the query (the first parameter named `key` in any case or encoding).
pub fn query_key(query: Option<&str>) -> Option<String> {
    url::form_urlencoded::parse(query?.as_bytes())
        .find(|(k, _)| is_key_name(k))
        .map(|(_, v)| v.into_owned())
}

/// The query to forward upstream: without any `key` parameter and without any parameter whose
/// value is `presented_key`. The original text is kept when nothing is dropped.
pub fn forwarded_query(query: Option<&str>, presented_key: Option<&str>) -> Option<String> {
    let q = query.filter(|q| !q.is_empty())?;
    let secret = |k: &Cow<'_, str>, v: &Cow<'_, str>| {
        is_key_name(k) || presented_key.is_some_and(|p| !p.is_empty() && v == p)
    };
    let pairs = url::form_urlencoded::parse(q.as_bytes());
    if !pairs.clone().any(|(k, v)| secret(&k, &v)) {
        return Some(q.to_string());
    }
    let mut out = url::form_urlencoded::Serializer::new(String::new());
    let mut kept = 0usize;
    for (k, v) in pairs.filter(|(k, v)| !secret(k, v)) {
        out.append_pair(&k, &v);
        kept += 1;
    }
    (kept > 0).then(|| out.finish())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_spelling_of_key_authenticates_and_is_dropped() {
        for q in [
            "key=cch_a",
            "%6Bey=cch_a",
            "k%65y=cch_a",
            "KEY=cch_a",
            "Key=cch_a&key=cch_b",
            "%4B%45%59=cch_a",
        ] {
            assert_eq!(query_key(Some(q)).as_deref(), Some("cch_a"), "{q}");
            assert_eq!(forwarded_query(Some(q), Some("cch_a")), None, "{q}");
        }
    }

    #[test]
    fn other_parameters_are_forwarded_and_the_untouched_query_is_kept_verbatim() {
        assert_eq!(
            forwarded_query(Some("beta=true"), Some("cch_a")).as_deref(),
            Some("beta=true")
        );
        assert_eq!(
            forwarded_query(Some("beta=true&%6Bey=cch_a&alt=sse"), Some("cch_a")).as_deref(),
            Some("beta=true&alt=sse")
        );
        assert_eq!(forwarded_query(Some(""), None), None);
        assert_eq!(forwarded_query(None, Some("cch_a")), None);
        assert_eq!(query_key(Some("monkey=1&keys=2")), None);
        assert_eq!(
            forwarded_query(Some("monkey=1&keys=2"), None).as_deref(),
            Some("monkey=1&keys=2")
        );
    }

    #[test]
    fn the_presented_key_is_dropped_under_any_name() {
        assert_eq!(
            forwarded_query(Some("a=1&api_key=cch_h&b=cch%5Fh"), Some("cch_h")).as_deref(),
            Some("a=1")
        );
    }
}
