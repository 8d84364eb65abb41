//! Token usage of a Claude answer, streamed or not, for cost and limits.
//!
//! A Claude stream reports usage twice: `message_start` carries the input side, and
//! `message_delta` the cumulative output (and, from converters and newer APIs, the final input and
//! cache counts). The tap follows the Anthropic SDK's merge rule: `output_tokens` always
//! overwrites, the other counts overwrite only when present and non-null.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::sse::SseEvent;

/// Token counts of one request, split the way prices are.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Usage {
    /// Uncached input tokens.
    pub input_tokens: u64,
    /// Output tokens (including thinking).
    pub output_tokens: u64,
    /// Input tokens written to the cache with the 5 minute TTL.
    pub cache_creation_5m_tokens: u64,
    /// Input tokens written to the cache with the 1 hour TTL.
    pub cache_creation_1h_tokens: u64,
    /// Input tokens read from the cache.
    pub cache_read_tokens: u64,
}

impl Usage {
    /// Every input token, cached or not (`input + cache writes + cache reads`).
    pub fn total_input_tokens(&self) -> u64 {
        self.input_tokens
            .saturating_add(self.cache_creation_5m_tokens)
            .saturating_add(self.cache_creation_1h_tokens)
            .saturating_add(self.cache_read_tokens)
    }
}

/// The raw Claude usage fields as last reported; `None` = never reported.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
struct RawClaudeUsage {
    input: Option<u64>,
    output: Option<u64>,
    cache_creation: Option<u64>,
    cache_5m: Option<u64>,
    cache_1h: Option<u64>,
    cache_read: Option<u64>,
}

fn count(v: &Value, field: &str) -> Option<u64> {
    let x = v.get(field)?;
    x.as_u64().or_else(|| {
        x.as_f64()
            .filter(|f| f.is_finite() && *f >= 0.0)
            .map(|f| f as u64)
    })
}

impl RawClaudeUsage {
    /// Merges a `usage` object: present, non-null fields overwrite.
    fn merge(&mut self, u: &Value) {
        let set = |slot: &mut Option<u64>, v: Option<u64>| {
            if v.is_some() {
                *slot = v;
            }
        };
        set(&mut self.input, count(u, "input_tokens"));
        set(&mut self.output, count(u, "output_tokens"));
        set(
            &mut self.cache_creation,
            count(u, "cache_creation_input_tokens"),
        );
        set(&mut self.cache_read, count(u, "cache_read_input_tokens"));
        if let Some(cc) = u.get("cache_creation").filter(|c| c.is_object()) {
            set(&mut self.cache_5m, count(cc, "ephemeral_5m_input_tokens"));
            set(&mut self.cache_1h, count(cc, "ephemeral_1h_input_tokens"));
        }
    }

    /// Resolves the TTL split: the `cache_creation` breakdown when it accounts for anything,
    /// else the whole `cache_creation_input_tokens` counts as 5 minute writes.
    fn resolve(&self) -> Usage {
        let total = self.cache_creation.unwrap_or(0);
        let (m5, h1) = (self.cache_5m.unwrap_or(0), self.cache_1h.unwrap_or(0));
        let (m5, h1) = if m5.saturating_add(h1) == 0 {
            (total, 0)
        } else {
            (m5, h1)
        };
        Usage {
            input_tokens: self.input.unwrap_or(0),
            output_tokens: self.output.unwrap_or(0),
            cache_creation_5m_tokens: m5,
            cache_creation_1h_tokens: h1,
            cache_read_tokens: self.cache_read.unwrap_or(0),
        }
    }
}

/// Usage of a non-streaming Claude Messages response body (`None` if it has no `usage`).
pub fn usage_from_claude_response(body: &Value) -> Option<Usage> {
    let u = body.get("usage").filter(|u| u.is_object())?;
    let mut raw = RawClaudeUsage::default();
    raw.merge(u);
    Some(raw.resolve())
}

/// Watches the events of a Claude Messages stream as they pass through and keeps what the
/// request log needs: usage, stop reason, model, whether it ended properly or with an error.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClaudeStreamTap {
    raw: RawClaudeUsage,
    saw_usage: bool,
    stop_reason: Option<String>,
    model: Option<String>,
    error: Option<String>,
    saw_error: bool,
    completed: bool,
}

/// The `type` of an event's data, read without building the rest. A `type` that is not a
/// string fails the parse, and the caller then falls back to the event name, as `on_json` does.
#[derive(Deserialize)]
struct EventType<'a> {
    #[serde(rename = "type", borrow, default)]
    ty: Option<std::borrow::Cow<'a, str>>,
}

impl ClaudeStreamTap {
    /// A tap that has seen nothing yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Takes one parsed event. Events whose data is not JSON (or not a known type) are ignored.
    pub fn on_event(&mut self, ev: &SseEvent) {
        // Nearly every event of a long answer is a content delta the tap ignores: read an
        // object's `type` without building a JSON tree, and parse fully only the few events
        // that carry usage, the stop reason or an error (same rule as `on_json`: the data's
        // `type`, else the SSE event name).
        if ev.data.trim_start().starts_with('{') {
            let ty = serde_json::from_str::<EventType<'_>>(&ev.data)
                .ok()
                .and_then(|t| t.ty);
            let ty = ty.as_deref().or(ev.event.as_deref()).unwrap_or("");
            if !matches!(
                ty,
                "message_start" | "message_delta" | "message_stop" | "error"
            ) {
                return;
            }
        }
        let Ok(data) = serde_json::from_str::<Value>(&ev.data) else {
            return;
        };
        self.on_json(ev.event.as_deref(), &data);
    }

    /// Takes one event's decoded data; `event` is the SSE event name, used when the data has no
    /// `type`.
    pub fn on_json(&mut self, event: Option<&str>, data: &Value) {
        let ty = data
            .get("type")
            .and_then(Value::as_str)
            .or(event)
            .unwrap_or("");
        match ty {
            "message_start" => {
                let Some(msg) = data.get("message") else {
                    return;
                };
                if let Some(m) = msg.get("model").and_then(Value::as_str) {
                    self.model = Some(m.to_string());
                }
                if let Some(u) = msg.get("usage").filter(|u| u.is_object()) {
                    self.raw.merge(u);
                    self.saw_usage = true;
                }
            }
            "message_delta" => {
                if let Some(u) = data.get("usage").filter(|u| u.is_object()) {
                    self.raw.merge(u);
                    self.saw_usage = true;
                }
                let stop = data.get("delta").and_then(|d| d.get("stop_reason"));
                if let Some(r) = stop.and_then(Value::as_str) {
                    self.stop_reason = Some(r.to_string());
                }
            }
            "message_stop" => self.completed = true,
            "error" => {
                self.saw_error = true;
                let e = data.get("error");
                let msg = e.and_then(|e| e.get("message")).and_then(Value::as_str);
                let kind = e.and_then(|e| e.get("type")).and_then(Value::as_str);
                self.error = match (kind, msg) {
                    (Some(k), Some(m)) => Some(format!("{k}: {m}")),
                    (None, Some(m)) => Some(m.to_string()),
                    (Some(k), None) => Some(k.to_string()),
                    (None, None) => Some("error event without message".to_string()),
                };
            }
            _ => {}
        }
    }

    /// The usage so far (final once the stream ended); zeros for fields never reported.
    pub fn usage(&self) -> Usage {
        self.raw.resolve()
    }

    /// Whether any usage was reported at all (an interrupted stream may have none).
    pub fn saw_usage(&self) -> bool {
        self.saw_usage
    }

    /// The last non-null `stop_reason` (e.g. `end_turn`, `tool_use`, `max_tokens`).
    pub fn stop_reason(&self) -> Option<&str> {
        self.stop_reason.as_deref()
    }

    /// The model the upstream says answered (from `message_start`).
    pub fn model(&self) -> Option<&str> {
        self.model.as_deref()
    }

    /// Whether an `error` event arrived in the stream.
    pub fn saw_error(&self) -> bool {
        self.saw_error
    }

    /// The error event's `type: message`, when one arrived.
    pub fn error_message(&self) -> Option<&str> {
        self.error.as_deref()
    }

    /// Whether `message_stop` arrived (the stream ended properly).
    pub fn completed(&self) -> bool {
        self.completed
    }
}

#[cfg(test)]
#[path = "usage_tests.rs"]
mod tests;
