//! Recognising "fake 200s": answers that arrive with a success status but carry no answer (an
//! HTML error page, an empty body, a JSON `{"error": …}`, a Responses `response.failed`, or a
//! stream whose first event is an error or that ends before any content). Relays produce them;
//! before the first byte goes to the client they are still a failover opportunity.
//!
//! Only structured fields are read (the body's shape, `error`, `status`, event types), never the
//! model's text. Streams are judged on Claude events: the upstream's own events are converted
//! to Claude first, so one rule covers every provider format.

use serde::Deserialize;
use serde::de::IgnoredAny;
use serde_json::Value;

use super::convert::StreamConverter;
use super::sse::{SseEvent, SseParser};

/// Most events held back before the first content event (then the stream is released as is).
pub const MAX_HELD_EVENTS: usize = 64;
/// Most bytes held back before the first content event (then the stream is released as is).
pub const MAX_HELD_BYTES: usize = 1 << 20;

/// The shapes of fake success recognised, each with the name the provider chain shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fake200Kind {
    /// A 200 whose body is empty or only whitespace.
    EmptyBody,
    /// A 200 with an HTML page (a relay's or a CDN's error page).
    Html,
    /// A 200 whose body is neither JSON nor an event stream.
    NotJson,
    /// A 200 with a JSON error object (`{"error": …}` or `{"type": "error", …}`).
    JsonError,
    /// A Responses answer or stream that failed (`status: failed` / `response.failed`).
    ResponseFailed,
    /// A stream whose first meaningful event is an error.
    StreamError,
    /// A stream that ended before any content or final event.
    EmptyStream,
    /// A stream that cannot be read in the provider's format before any content.
    MalformedStream,
}

impl Fake200Kind {
    /// The name recorded in the provider chain.
    pub fn name(self) -> &'static str {
        match self {
            Self::EmptyBody => "fake_200_empty_body",
            Self::Html => "fake_200_html",
            Self::NotJson => "fake_200_not_json",
            Self::JsonError => "fake_200_json_error",
            Self::ResponseFailed => "fake_200_response_failed",
            Self::StreamError => "stream_error_before_content",
            Self::EmptyStream => "empty_stream",
            Self::MalformedStream => "malformed_stream",
        }
    }
}

/// A fake success: its shape and a short description for the chain (the upstream's own error
/// message when it sent one, capped; never model text).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fake200 {
    /// The shape.
    pub kind: Fake200Kind,
    /// What the chain and the client's error say.
    pub detail: String,
}

/// Longest upstream error message kept in a detail (characters).
const MAX_DETAIL_CHARS: usize = 300;

fn fake(kind: Fake200Kind, detail: impl Into<String>) -> Fake200 {
    let mut detail: String = detail.into();
    if let Some((i, _)) = detail.char_indices().nth(MAX_DETAIL_CHARS) {
        detail.truncate(i);
        detail.push('…');
    }
    Fake200 { kind, detail }
}

/// The top-level fields of a JSON answer that tell an error from an answer; everything else
/// is skipped without being built.
#[derive(Deserialize)]
struct TopLevel {
    #[serde(default)]
    error: Option<Value>,
    #[serde(default)]
    status: Option<Value>,
    #[serde(rename = "type", default)]
    ty: Option<Value>,
}

/// The message of an error value (`{"message": …}`, `{"error": {"message": …}}` or a string).
fn error_message(e: &Value) -> String {
    let msg = e
        .get("message")
        .and_then(Value::as_str)
        .or_else(|| e.as_str())
        .unwrap_or("");
    let code = e
        .get("type")
        .or_else(|| e.get("code"))
        .or_else(|| e.get("status"))
        .map(|v| match v {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        });
    match (code, msg.trim()) {
        (Some(c), "") => c,
        (Some(c), m) => format!("{c}: {m}"),
        (None, "") => "error object without message".into(),
        (None, m) => m.to_string(),
    }
}

fn is_meaningful_error(e: &Value) -> bool {
    match e {
        Value::Null | Value::Bool(false) => false,
        Value::String(s) => !s.trim().is_empty(),
        Value::Object(o) => !o.is_empty(),
        Value::Array(a) => !a.is_empty(),
        _ => true,
    }
}

/// Judges a complete 2xx body: `None` when it can be an answer, else the fake shape.
pub fn inspect_full_body(content_type: Option<&str>, body: &[u8]) -> Option<Fake200> {
    let start = body.iter().position(|b| !b.is_ascii_whitespace());
    let Some(start) = start else {
        return Some(fake(
            Fake200Kind::EmptyBody,
            "the upstream answered 200 with an empty body",
        ));
    };
    let ct = content_type.unwrap_or("").to_ascii_lowercase();
    if ct.contains("text/html") || body.get(start) == Some(&b'<') {
        return Some(fake(
            Fake200Kind::Html,
            "the upstream answered 200 with an HTML page",
        ));
    }
    if body.get(start) != Some(&b'{') {
        // Valid JSON of another shape (a Gemini array of chunks) is an answer.
        return match serde_json::from_slice::<IgnoredAny>(body) {
            Ok(_) => None,
            Err(_) => Some(fake(
                Fake200Kind::NotJson,
                "the upstream answered 200 with a body that is not JSON",
            )),
        };
    }
    match serde_json::from_slice::<TopLevel>(body) {
        Ok(top) => {
            let failed = top.status.as_ref().and_then(Value::as_str) == Some("failed");
            let typed_error = top.ty.as_ref().and_then(Value::as_str) == Some("error");
            let error = top.error.filter(is_meaningful_error);
            match (error, failed, typed_error) {
                (Some(e), true, _) => Some(fake(Fake200Kind::ResponseFailed, error_message(&e))),
                (None, true, _) => Some(fake(
                    Fake200Kind::ResponseFailed,
                    "the upstream answered 200 with a failed response",
                )),
                (Some(e), false, _) => Some(fake(Fake200Kind::JsonError, error_message(&e))),
                (None, false, true) => Some(fake(
                    Fake200Kind::JsonError,
                    "the upstream answered 200 with an error object",
                )),
                (None, false, false) => None,
            }
        }
        Err(_) => Some(fake(
            Fake200Kind::NotJson,
            "the upstream answered 200 with a body that is not JSON",
        )),
    }
}

/// What the gate decides after a chunk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GateVerdict {
    /// Nothing meaningful yet: keep holding.
    Hold,
    /// Content (or a final event, or the prebuffer cap) arrived: send what is held and pass the
    /// rest through.
    Release,
    /// A fake success: fail over.
    Fail(Fake200),
}

/// Judges the start of a stream, chunk by chunk, until its first content event.
pub struct StreamGate {
    parser: SseParser,
    to_claude: Option<Box<dyn StreamConverter>>,
    lenient: bool,
    events: usize,
    bytes: usize,
}

impl StreamGate {
    /// A gate for a stream in the provider's format: `to_claude` converts its events (`None`
    /// for Claude). `lenient` (same format on both sides, bytes passed through untouched):
    /// unreadable events release the stream instead of failing it, as the pass-through does.
    pub fn new(to_claude: Option<Box<dyn StreamConverter>>, lenient: bool) -> Self {
        Self {
            parser: SseParser::new(),
            to_claude,
            lenient,
            events: 0,
            bytes: 0,
        }
    }

    /// Takes the next chunk of the stream.
    pub fn push(&mut self, chunk: &[u8]) -> GateVerdict {
        self.bytes = self.bytes.saturating_add(chunk.len());
        let events = match self.parser.push(chunk) {
            Ok(evs) => evs,
            Err(_) if self.lenient => return GateVerdict::Release,
            Err(e) => {
                return GateVerdict::Fail(fake(
                    Fake200Kind::MalformedStream,
                    format!("unreadable upstream stream: {e}"),
                ));
            }
        };
        for ev in &events {
            match self.judge(ev) {
                GateVerdict::Hold => {}
                decided => return decided,
            }
        }
        if self.events >= MAX_HELD_EVENTS || self.bytes >= MAX_HELD_BYTES {
            return GateVerdict::Release;
        }
        GateVerdict::Hold
    }

    /// The stream ended while still held: what it was.
    pub fn ended(&mut self) -> GateVerdict {
        if let Ok(Some(ev)) = self.parser.finish() {
            match self.judge(&ev) {
                GateVerdict::Hold => {}
                decided => return decided,
            }
        }
        GateVerdict::Fail(fake(
            Fake200Kind::EmptyStream,
            "the upstream stream ended before any content",
        ))
    }

    fn judge(&mut self, ev: &SseEvent) -> GateVerdict {
        self.events += 1;
        if is_response_failed(ev) {
            let detail = serde_json::from_str::<Value>(&ev.data)
                .ok()
                .and_then(|v| v.pointer("/response/error").cloned())
                .filter(is_meaningful_error)
                .map(|e| error_message(&e))
                .unwrap_or_else(|| "the upstream stream reported a failed response".into());
            return GateVerdict::Fail(fake(Fake200Kind::ResponseFailed, detail));
        }
        let claude: Vec<SseEvent> = match self.to_claude.as_mut() {
            None => vec![ev.clone()],
            Some(conv) => match conv.push(ev) {
                Ok(out) => out
                    .into_iter()
                    .map(|o| SseEvent {
                        event: o.event,
                        data: o.data,
                        id: None,
                        retry: None,
                    })
                    .collect(),
                Err(_) if self.lenient => return GateVerdict::Release,
                Err(e) => {
                    return GateVerdict::Fail(fake(
                        Fake200Kind::MalformedStream,
                        format!("unreadable upstream event: {e}"),
                    ));
                }
            },
        };
        for c in &claude {
            match claude_event_kind(c) {
                EventKind::Bookkeeping => {}
                EventKind::Content => return GateVerdict::Release,
                EventKind::Error(detail) => {
                    return GateVerdict::Fail(fake(Fake200Kind::StreamError, detail));
                }
            }
        }
        GateVerdict::Hold
    }
}

fn is_response_failed(ev: &SseEvent) -> bool {
    if ev.event.as_deref() == Some("response.failed") {
        return true;
    }
    ev.data.contains("response.failed")
        && serde_json::from_str::<TopLevel>(&ev.data)
            .ok()
            .and_then(|t| t.ty)
            .is_some_and(|t| t.as_str() == Some("response.failed"))
}

enum EventKind {
    /// `message_start`, `ping`, an empty text or thinking block opening.
    Bookkeeping,
    /// Text, thinking, a tool call, or a final event.
    Content,
    /// An `error` event (its `type: message`).
    Error(String),
}

/// The role of one Claude event for the gate.
fn claude_event_kind(ev: &SseEvent) -> EventKind {
    let data: Value = serde_json::from_str(&ev.data).unwrap_or(Value::Null);
    let ty = data
        .get("type")
        .and_then(Value::as_str)
        .or(ev.event.as_deref())
        .unwrap_or("");
    match ty {
        "error" => EventKind::Error(
            data.get("error")
                .map(error_message)
                .unwrap_or_else(|| "error event without details".into()),
        ),
        "content_block_delta" | "message_delta" | "message_stop" => EventKind::Content,
        "content_block_start" => {
            let block = data.get("content_block");
            let kind = block
                .and_then(|b| b.get("type"))
                .and_then(Value::as_str)
                .unwrap_or("");
            let empty = |field: &str| {
                block
                    .and_then(|b| b.get(field))
                    .and_then(Value::as_str)
                    .is_none_or(str::is_empty)
            };
            match kind {
                "text" if empty("text") => EventKind::Bookkeeping,
                "thinking" if empty("thinking") => EventKind::Bookkeeping,
                _ => EventKind::Content,
            }
        }
        _ => EventKind::Bookkeeping,
    }
}

#[cfg(test)]
#[path = "content_gate_tests.rs"]
mod tests;
