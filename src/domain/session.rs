//! Session ids: which conversation a request belongs to, so a session can stick to a provider.
//!
//! Clients name their session in different places (headers, `metadata`, `prompt_cache_key`);
//! when none does, a hash of the key and the first user message stands in (a last resort: two
//! identical first prompts on the same key share it). Ids from clients are untrusted input: they
//! are capped and restricted to safe characters, or hashed.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};

/// Longest session id kept as sent; longer ones are hashed.
pub const MAX_SESSION_ID_LEN: usize = 128;

/// Where a session id came from (the derived ones are the least reliable).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SessionSource {
    /// A request header (`x-claude-code-session-id`, Codex's `session-id`).
    Header,
    /// Claude Code's `metadata.user_id` (old string form or new JSON string).
    MetadataUserId,
    /// `metadata.session_id` in the body.
    MetadataSessionId,
    /// The Responses `prompt_cache_key` (Codex sets it to its session id).
    PromptCacheKey,
    /// Hash of the key id and the first user message.
    Derived,
}

/// A session id and where it came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionId {
    /// The id: safe characters only, at most [`MAX_SESSION_ID_LEN`] long.
    pub id: String,
    /// Its origin.
    pub source: SessionSource,
}

fn hash_hex(parts: &[&[u8]]) -> String {
    let mut h = Sha256::new();
    for p in parts {
        h.update((p.len() as u64).to_be_bytes());
        h.update(p);
    }
    let digest = h.finalize();
    hex::encode(digest.get(..16).unwrap_or(&digest))
}

fn safe_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | ':')
}

/// Makes a client-supplied id safe to use as a store key and log value: kept when it is short and
/// made of `[A-Za-z0-9._:-]`, otherwise replaced by `x_` + a hash of it; blank → `None`.
pub fn sanitize_session_id(raw: &str) -> Option<String> {
    let t = raw.trim();
    if t.is_empty() {
        return None;
    }
    if t.len() <= MAX_SESSION_ID_LEN && t.chars().all(safe_char) {
        Some(t.to_string())
    } else {
        Some(format!("x_{}", hash_hex(&[t.as_bytes()])))
    }
}

fn from_client(raw: Option<&str>, source: SessionSource) -> Option<SessionId> {
    raw.and_then(sanitize_session_id)
        .map(|id| SessionId { id, source })
}

/// Reads the session out of Claude Code's `metadata.user_id`: the old string form
/// `user_<hash>_account__session_<uuid>` or the new JSON string `{"session_id": …}`.
pub fn session_from_user_id(user_id: &Value) -> Option<String> {
    match user_id {
        Value::String(s) => {
            let t = s.trim();
            if t.starts_with('{') {
                let inner: Value = serde_json::from_str(t).ok()?;
                return inner
                    .get("session_id")
                    .and_then(Value::as_str)
                    .map(str::to_string);
            }
            t.rfind("_session_")
                .map(|i| t.get(i + "_session_".len()..).unwrap_or("").to_string())
        }
        Value::Object(m) => m
            .get("session_id")
            .and_then(Value::as_str)
            .map(str::to_string),
        _ => None,
    }
}

/// Writes `v` as JSON with object keys sorted and every `cache_control` dropped, so the same
/// content hashes the same however a client orders keys or moves cache breakpoints.
fn canonical(v: &Value, out: &mut String) {
    match v {
        Value::Object(m) => {
            let mut keys: Vec<&String> = m.keys().filter(|k| *k != "cache_control").collect();
            keys.sort();
            out.push('{');
            for (i, k) in keys.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String((*k).clone()).to_string());
                out.push(':');
                if let Some(x) = m.get(*k) {
                    canonical(x, out);
                }
            }
            out.push('}');
        }
        Value::Array(a) => {
            out.push('[');
            for (i, x) in a.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                canonical(x, out);
            }
            out.push(']');
        }
        other => out.push_str(&other.to_string()),
    }
}

/// The text of a message's content: a string as is; for block arrays the `text` of text-like
/// blocks and the canonical JSON of anything else, one per line.
fn content_text(content: &Value) -> String {
    match content {
        Value::String(s) => s.clone(),
        Value::Array(blocks) => {
            let mut out = String::new();
            for (i, b) in blocks.iter().enumerate() {
                if i > 0 {
                    out.push('\n');
                }
                match b.get("text").and_then(Value::as_str) {
                    Some(t) => out.push_str(t),
                    None => canonical(b, &mut out),
                }
            }
            out
        }
        Value::Null => String::new(),
        other => {
            let mut out = String::new();
            canonical(other, &mut out);
            out
        }
    }
}

/// The text of the first user turn of a body in any of the four formats (`messages` of Claude
/// and Chat Completions, `input` of Responses, `contents` of Gemini).
pub fn first_user_text(body: &Value) -> Option<String> {
    if let Some(msgs) = body.get("messages").and_then(Value::as_array) {
        let m = msgs
            .iter()
            .find(|m| m.get("role").and_then(Value::as_str) == Some("user"))?;
        return Some(content_text(m.get("content").unwrap_or(&Value::Null)));
    }
    match body.get("input") {
        Some(Value::String(s)) => return Some(s.clone()),
        Some(Value::Array(items)) => {
            let m = items
                .iter()
                .find(|m| m.get("role").and_then(Value::as_str) == Some("user"))?;
            return Some(content_text(m.get("content").unwrap_or(&Value::Null)));
        }
        _ => {}
    }
    let contents = body.get("contents").and_then(Value::as_array)?;
    let c = contents.iter().find(|c| {
        c.get("role")
            .and_then(Value::as_str)
            .is_none_or(|r| r == "user")
    })?;
    Some(content_text(c.get("parts").unwrap_or(&Value::Null)))
}

/// The last-resort session id: `h_` + a hash of the key id and the first user message.
pub fn derived_session_id(key_id: i64, body: &Value) -> SessionId {
    let text = first_user_text(body).unwrap_or_default();
    let key = key_id.to_string();
    SessionId {
        id: format!("h_{}", hash_hex(&[key.as_bytes(), text.as_bytes()])),
        source: SessionSource::Derived,
    }
}

fn metadata_str<'a>(body: &'a Value, field: &str) -> Option<&'a str> {
    body.get("metadata")
        .and_then(|m| m.get(field))
        .and_then(Value::as_str)
}

/// The session of a Claude Messages request: the `x-claude-code-session-id` header, then
/// `metadata.user_id`, then `metadata.session_id`, else derived from the key and first message.
pub fn claude_session_id(body: &Value, header: Option<&str>, key_id: i64) -> SessionId {
    from_client(header, SessionSource::Header)
        .or_else(|| {
            let uid = body.get("metadata").and_then(|m| m.get("user_id"))?;
            from_client(
                session_from_user_id(uid).as_deref(),
                SessionSource::MetadataUserId,
            )
        })
        .or_else(|| {
            from_client(
                metadata_str(body, "session_id"),
                SessionSource::MetadataSessionId,
            )
        })
        .unwrap_or_else(|| derived_session_id(key_id, body))
}

/// The session of an OpenAI request (Responses or Chat Completions, e.g. Codex): the
/// `session-id` header, then `prompt_cache_key`, then `metadata.session_id`, else derived.
pub fn openai_session_id(body: &Value, header: Option<&str>, key_id: i64) -> SessionId {
    from_client(header, SessionSource::Header)
        .or_else(|| {
            let k = body.get("prompt_cache_key").and_then(Value::as_str);
            from_client(k, SessionSource::PromptCacheKey)
        })
        .or_else(|| {
            from_client(
                metadata_str(body, "session_id"),
                SessionSource::MetadataSessionId,
            )
        })
        .unwrap_or_else(|| derived_session_id(key_id, body))
}

/// Number of turns in the conversation (`messages`, `input` items or Gemini `contents`).
pub fn message_count(body: &Value) -> usize {
    ["messages", "input", "contents"]
        .iter()
        .find_map(|f| body.get(*f).and_then(Value::as_array))
        .map_or(0, Vec::len)
}

/// Whether the request continues a conversation (more than one message); only then may a
/// session be reused, as in the original.
pub fn has_history(body: &Value) -> bool {
    message_count(body) > 1
}

#[cfg(test)]
#[path = "session_tests.rs"]
mod tests;
