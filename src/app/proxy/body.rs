//! The client's request body, read once for the few fields routing needs (model, stream,
//! metadata, message count) without building a JSON tree; the full tree is parsed only when
//! something needs it (conversion, a model redirect, a derived session id). Claude Code bodies
//! run to hundreds of kilobytes, so this keeps passthrough requests cheap.

use std::fmt;
use std::sync::OnceLock;

use bytes::Bytes;
use serde::Deserialize;
use serde::de::{Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::Value;

/// The routing-relevant fields of a request body, in any of the four formats.
#[derive(Debug, Default, Deserialize)]
pub struct Head {
    /// `model` (absent in Gemini bodies: the model is in the URL).
    #[serde(default)]
    pub model: Option<String>,
    /// `stream`.
    #[serde(default)]
    pub stream: Option<bool>,
    /// `metadata` (Claude Code's `user_id`, `session_id`).
    #[serde(default)]
    pub metadata: Option<Value>,
    /// Responses `prompt_cache_key` (Codex sets it to its session id).
    #[serde(default)]
    pub prompt_cache_key: Option<Value>,
    /// Number of `messages` (Claude, Chat).
    #[serde(default, deserialize_with = "count")]
    pub messages: Option<usize>,
    /// Number of `input` items (Responses).
    #[serde(default, deserialize_with = "count")]
    pub input: Option<usize>,
    /// Number of `contents` (Gemini).
    #[serde(default, deserialize_with = "count")]
    pub contents: Option<usize>,
}

/// Counts the elements of an array without building them; other shapes count as one.
fn count<'de, D: Deserializer<'de>>(d: D) -> Result<Option<usize>, D::Error> {
    struct Counter;
    impl<'de> Visitor<'de> for Counter {
        type Value = Option<usize>;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("an array")
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
            let mut n = 0;
            while seq.next_element::<IgnoredAny>()?.is_some() {
                n += 1;
            }
            Ok(Some(n))
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
            while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
            Ok(Some(1))
        }
        fn visit_str<E>(self, _v: &str) -> Result<Self::Value, E> {
            Ok(Some(1))
        }
        fn visit_unit<E>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_bool<E>(self, _v: bool) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_i64<E>(self, _v: i64) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_u64<E>(self, _v: u64) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_f64<E>(self, _v: f64) -> Result<Self::Value, E> {
            Ok(None)
        }
    }
    d.deserialize_any(Counter)
}

/// A request body: its head, and the full JSON tree on demand. (Debug shows only sizes: the
/// body is message content and must never reach a log.)
pub struct RequestBody {
    raw: Bytes,
    /// The routing-relevant fields.
    pub head: Head,
    full: OnceLock<Value>,
}

impl fmt::Debug for RequestBody {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RequestBody")
            .field("bytes", &self.raw.len())
            .finish_non_exhaustive()
    }
}

impl RequestBody {
    /// Reads the head; fails with a client-facing message when the body is not a JSON object,
    /// not UTF-8, or nested too deep (`body_shape`).
    pub fn parse(raw: Bytes) -> Result<Self, String> {
        super::body_shape::check(&raw)?;
        match serde_json::from_slice::<Head>(&raw) {
            Ok(head) => Ok(Self {
                raw,
                head,
                full: OnceLock::new(),
            }),
            Err(e) if e.is_syntax() || e.is_eof() => {
                Err(format!("request body is not valid JSON: {e}"))
            }
            Err(e) => {
                // A wrong type at the top level, or in one of the head fields.
                if raw.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
                    Err("request body must be a JSON object".into())
                } else {
                    Err(format!("request body is invalid: {e}"))
                }
            }
        }
    }

    /// The raw bytes, as received.
    pub fn raw(&self) -> &Bytes {
        &self.raw
    }

    /// The full JSON tree (parsed on first use; the head parse already proved it is JSON).
    pub fn value(&self) -> &Value {
        self.full
            .get_or_init(|| serde_json::from_slice(&self.raw).unwrap_or(Value::Null))
    }

    /// Messages (or input items, or contents) in the conversation.
    pub fn message_count(&self) -> usize {
        self.head
            .messages
            .or(self.head.input)
            .or(self.head.contents)
            .unwrap_or(0)
    }

    /// The fields session ids are read from, as a small JSON object (no message history).
    pub fn session_fields(&self) -> Value {
        let mut o = serde_json::Map::new();
        if let Some(m) = &self.head.metadata {
            o.insert("metadata".into(), m.clone());
        }
        if let Some(p) = &self.head.prompt_cache_key {
            o.insert("prompt_cache_key".into(), p.clone());
        }
        Value::Object(o)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn head_counts_without_building_and_rejects_non_objects() {
        let b = RequestBody::parse(Bytes::from_static(
            br#"{"model":"m","stream":true,"messages":[{"role":"user","content":"a"},{"role":"assistant","content":[1,2]}],"metadata":{"user_id":"u"}}"#,
        ))
        .unwrap();
        assert_eq!(b.head.model.as_deref(), Some("m"));
        assert_eq!(b.head.stream, Some(true));
        assert_eq!(b.message_count(), 2);
        assert_eq!(b.session_fields()["metadata"]["user_id"], "u");
        assert_eq!(b.value()["messages"][1]["content"][1], 2);
        let input =
            RequestBody::parse(Bytes::from_static(br#"{"model":"m","input":"hi"}"#)).unwrap();
        assert_eq!(input.message_count(), 1);
        assert!(
            RequestBody::parse(Bytes::from_static(b"[1]"))
                .unwrap_err()
                .contains("JSON object")
        );
        assert!(
            RequestBody::parse(Bytes::from_static(b"{nope"))
                .unwrap_err()
                .contains("not valid JSON")
        );
        assert!(
            RequestBody::parse(Bytes::from_static(br#"{"model": 5}"#))
                .unwrap_err()
                .contains("invalid")
        );
    }
}
