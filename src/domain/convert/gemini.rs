//! Conversion between Google Gemini `generateContent` / `streamGenerateContent?alt=sse` and
//! Claude Messages (see `convert` for the contract).
//!
//! Public API (all reachable as `convert::gemini::…`):
//! - [`request_to_claude`] / [`request_to_claude_with_model`]: a Gemini client request as a
//!   Claude request. A Gemini body has no model (it is in the URL): the caller inserts
//!   `"model"` into the result, or uses the `_with_model` variant.
//! - [`request_from_claude`]: a Claude request as a Gemini body *without* model; the caller
//!   puts the model in the URL (`/v1beta/models/{model}:generateContent`).
//! - [`response_to_claude`], [`response_from_claude`], [`error_from_claude`].
//! - [`StreamToClaude`] (Gemini SSE chunks → Claude events) and [`StreamFromClaude`] (Claude
//!   events → Gemini chunks), both [`super::StreamConverter`]s.
//! - [`usage_from_gemini`]: the billing view of a `usageMetadata` object.
//!
//! Decisions (the reasons are in `docs/protocols.md` §6):
//! - **Tool-call ids.** A `functionCall.id` sent by Gemini is kept (characters Claude forbids are
//!   replaced and a hash suffix keeps it unique, the same function on call and result). Calls
//!   without id get a deterministic synthetic id: `toolu_gemini_<n>` in requests (`n` = ordinal
//!   of the call in the request history) and `toolu_gemini_<h>_<n>` in responses (`h` = 8 hex
//!   digits of a SHA-256 of `responseId`, `n` = ordinal of the call in the response), so two
//!   turns never reuse an id. A `functionResponse` without id is matched to the earliest
//!   unanswered call of the same name. Synthetic ids (prefix `toolu_gemini_`) are stripped
//!   again when converting to Gemini, so the upstream never sees ids it did not issue.
//! - **Usage.** `input_tokens = promptTokenCount − cachedContentTokenCount +
//!   toolUsePromptTokenCount`, `cache_read_input_tokens = cachedContentTokenCount`, no cache
//!   writes (Gemini reports none), `output_tokens = candidatesTokenCount + thoughtsTokenCount`
//!   (Gemini excludes thoughts from candidates; Claude's output includes thinking).
//! - **Thinking.** Gemini thought parts become Claude `thinking` blocks; a `thoughtSignature`
//!   travels in the Claude `signature` as the envelope `cch1.gemini.<signature>` and is put back
//!   on the next non-thinking part when the history returns to Gemini. Claude signatures shown
//!   to Gemini clients travel the other way as `cch1.anthropic.<signature>` (redacted thinking:
//!   `cch1.anthropic-redacted.<data>`). Foreign or missing signatures are dropped. A Gemini
//!   model turn with function calls but no signature gets the documented dummy signature on its
//!   first call.

mod request;
mod request_out;
mod response;
mod schema;
pub mod spelling;
mod stream;

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_stream;

use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};

use super::super::usage::Usage;
use super::ConvertError;

pub use request::{request_to_claude, request_to_claude_with_model};
pub use request_out::request_from_claude;
pub use response::{error_from_claude, response_from_claude, response_to_claude};
pub use schema::sanitize_schema;
pub use stream::{StreamFromClaude, StreamToClaude};

/// The format name used in [`ConvertError::Invalid`].
const FORMAT: &str = "gemini";

/// Prefix of tool-call ids cch synthesises for Gemini calls that came without an id.
pub const SYNTHETIC_ID_PREFIX: &str = "toolu_gemini_";

/// Envelope prefix of a Gemini `thoughtSignature` carried in a Claude `signature`.
pub const GEMINI_SIGNATURE_PREFIX: &str = "cch1.gemini.";

/// Envelope prefix of a Claude thinking `signature` carried in a Gemini `thoughtSignature`.
pub const ANTHROPIC_SIGNATURE_PREFIX: &str = "cch1.anthropic.";

/// Envelope prefix of Claude `redacted_thinking.data` carried in a Gemini `thoughtSignature`.
pub const ANTHROPIC_REDACTED_PREFIX: &str = "cch1.anthropic-redacted.";

/// The signature value Gemini documents for function calls it did not produce itself.
pub const DUMMY_THOUGHT_SIGNATURE: &str = "skip_thought_signature_validator";

/// `max_tokens` sent to Claude when the Gemini request sets no `maxOutputTokens` (the value the
/// original project used). Callers with a per-provider default overwrite `max_tokens`.
pub const DEFAULT_MAX_TOKENS: u64 = 32000;

fn invalid(message: impl Into<String>) -> ConvertError {
    ConvertError::Invalid {
        format: FORMAT,
        message: message.into(),
    }
}

fn unsupported(feature: impl Into<String>) -> ConvertError {
    ConvertError::Unsupported {
        feature: feature.into(),
    }
}

fn hex8(s: &str) -> String {
    let digest = Sha256::digest(s.as_bytes());
    digest.iter().take(4).map(|b| format!("{b:02x}")).collect()
}

/// A Gemini function-call id as a Claude `tool_use` id (`^[a-zA-Z0-9_-]+$`): kept when valid,
/// else illegal characters become `_` and a hash of the original is appended.
fn claude_id_from_gemini(id: &str) -> String {
    let ok = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == '-';
    if !id.is_empty() && id.chars().all(ok) {
        return id.to_string();
    }
    let clean: String = id
        .chars()
        .map(|c| if ok(c) { c } else { '_' })
        .take(48)
        .collect();
    format!("{clean}_{}", hex8(id))
}

/// A Gemini `thoughtSignature` as a Claude `signature`: a Claude signature that travelled
/// through a Gemini client comes back unwrapped, anything else is wrapped as
/// `cch1.gemini.<signature>`.
fn claude_signature(sig: &str) -> String {
    match sig.strip_prefix(ANTHROPIC_SIGNATURE_PREFIX) {
        Some(orig) => orig.to_string(),
        None => format!("{GEMINI_SIGNATURE_PREFIX}{sig}"),
    }
}

/// The synthetic id of the `n`th call of a response (`response_id` may be empty).
fn response_call_id(response_id: &str, n: usize) -> String {
    if response_id.is_empty() {
        format!("{SYNTHETIC_ID_PREFIX}{n}")
    } else {
        format!("{SYNTHETIC_ID_PREFIX}{}_{n}", hex8(response_id))
    }
}

/// A Claude `tool_use` id as a Gemini `functionCall.id`: `None` for ids cch synthesised.
fn gemini_id_from_claude(id: &str) -> Option<String> {
    if id.is_empty() || id.starts_with(SYNTHETIC_ID_PREFIX) {
        None
    } else {
        Some(id.to_string())
    }
}

/// Claude `stop_reason` for a Gemini `finishReason`; `saw_call` = a functionCall was produced.
/// `None` means the upstream failed without usable output (malformed call and no content).
fn stop_reason_from_finish(
    reason: &str,
    saw_call: bool,
    has_content: bool,
) -> Option<&'static str> {
    Some(match reason {
        "MAX_TOKENS" => "max_tokens",
        "SAFETY"
        | "RECITATION"
        | "BLOCKLIST"
        | "PROHIBITED_CONTENT"
        | "SPII"
        | "LANGUAGE"
        | "IMAGE_SAFETY"
        | "IMAGE_PROHIBITED_CONTENT"
        | "IMAGE_RECITATION" => "refusal",
        "MALFORMED_FUNCTION_CALL" | "UNEXPECTED_TOOL_CALL" | "TOO_MANY_TOOL_CALLS" => {
            if !has_content {
                return None;
            }
            if saw_call { "tool_use" } else { "end_turn" }
        }
        _ if saw_call => "tool_use",
        _ => "end_turn",
    })
}

/// Gemini `finishReason` for a Claude `stop_reason`.
fn finish_from_stop_reason(reason: Option<&str>) -> &'static str {
    match reason {
        Some("max_tokens") | Some("model_context_window_exceeded") => "MAX_TOKENS",
        Some("refusal") => "SAFETY",
        _ => "STOP",
    }
}

fn count(v: &Value, field: &str) -> u64 {
    v.get(field).and_then(Value::as_u64).unwrap_or(0)
}

/// Token usage of a Gemini `usageMetadata` object, split the way Claude bills it:
/// uncached input = `promptTokenCount − cachedContentTokenCount + toolUsePromptTokenCount`,
/// cache reads = `cachedContentTokenCount`, no cache writes, output =
/// `candidatesTokenCount + thoughtsTokenCount` (thinking is billed as output).
pub fn usage_from_gemini(meta: &Value) -> Usage {
    let prompt = count(meta, "promptTokenCount");
    let cached = count(meta, "cachedContentTokenCount").min(prompt);
    Usage {
        input_tokens: (prompt - cached).saturating_add(count(meta, "toolUsePromptTokenCount")),
        output_tokens: count(meta, "candidatesTokenCount")
            .saturating_add(count(meta, "thoughtsTokenCount")),
        cache_creation_5m_tokens: 0,
        cache_creation_1h_tokens: 0,
        cache_read_tokens: cached,
    }
}

/// The Claude `usage` object for a Gemini `usageMetadata`.
fn claude_usage_json(meta: &Value) -> Value {
    let u = usage_from_gemini(meta);
    json!({
        "input_tokens": u.input_tokens,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": u.cache_read_tokens,
        "output_tokens": u.output_tokens,
    })
}

/// The Gemini `usageMetadata` for a Claude `usage` object (thinking tokens are not reported
/// separately by Claude, so all output counts as candidates).
fn gemini_usage_json(usage: &Value) -> Value {
    let input = count(usage, "input_tokens");
    let read = count(usage, "cache_read_input_tokens");
    let write = count(usage, "cache_creation_input_tokens");
    let output = count(usage, "output_tokens");
    let thoughts = usage
        .get("output_tokens_details")
        .map(|d| count(d, "thinking_tokens"))
        .unwrap_or(0)
        .min(output);
    let prompt = input.saturating_add(read).saturating_add(write);
    let mut m = Map::new();
    m.insert("promptTokenCount".into(), json!(prompt));
    if read > 0 {
        m.insert("cachedContentTokenCount".into(), json!(read));
    }
    m.insert("candidatesTokenCount".into(), json!(output - thoughts));
    if thoughts > 0 {
        m.insert("thoughtsTokenCount".into(), json!(thoughts));
    }
    m.insert(
        "totalTokenCount".into(),
        json!(prompt.saturating_add(output)),
    );
    Value::Object(m)
}

/// Gemini `(code, status)` for a Claude error type and HTTP status.
fn gemini_status(status: u16, claude_type: Option<&str>) -> (u16, &'static str) {
    match claude_type {
        Some("invalid_request_error") if !(400..500).contains(&status) => {
            return (400, "INVALID_ARGUMENT");
        }
        Some("authentication_error") => return (401, "UNAUTHENTICATED"),
        Some("permission_error") => return (403, "PERMISSION_DENIED"),
        Some("not_found_error") => return (404, "NOT_FOUND"),
        Some("rate_limit_error") => return (429, "RESOURCE_EXHAUSTED"),
        Some("overloaded_error") => return (503, "UNAVAILABLE"),
        Some("timeout_error") => return (504, "DEADLINE_EXCEEDED"),
        Some("api_error") if status < 500 => return (500, "INTERNAL"),
        _ => {}
    }
    let s = match status {
        401 => "UNAUTHENTICATED",
        402 => "FAILED_PRECONDITION",
        403 => "PERMISSION_DENIED",
        404 => "NOT_FOUND",
        409 => "ABORTED",
        429 => "RESOURCE_EXHAUSTED",
        501 => "UNIMPLEMENTED",
        503 | 529 => "UNAVAILABLE",
        504 => "DEADLINE_EXCEEDED",
        s if s >= 500 => "INTERNAL",
        _ => "INVALID_ARGUMENT",
    };
    (status, s)
}

/// Claude `(error type)` for a Gemini canonical status or HTTP code.
fn claude_error_type(code: u64, status: &str) -> &'static str {
    match (status, code) {
        ("UNAUTHENTICATED", _) | (_, 401) => "authentication_error",
        ("PERMISSION_DENIED", _) | (_, 403) => "permission_error",
        ("NOT_FOUND", _) | (_, 404) => "not_found_error",
        ("RESOURCE_EXHAUSTED", _) | (_, 429) => "rate_limit_error",
        ("UNAVAILABLE", _) | (_, 503) => "overloaded_error",
        ("DEADLINE_EXCEEDED", _) | (_, 504) => "timeout_error",
        ("INVALID_ARGUMENT", _) | ("FAILED_PRECONDITION", _) | (_, 400) => "invalid_request_error",
        _ => "api_error",
    }
}

/// Unwraps a Gemini CLI Code Assist envelope (`{"response": …}` / `{"request": …}`).
fn unwrap_envelope<'a>(v: &'a Value, key: &str, marker: &str) -> &'a Value {
    match v.get(key) {
        Some(inner) if inner.is_object() && v.get(marker).is_none() => inner,
        _ => v,
    }
}
