//! Conversion between the four wire formats. Claude Messages is the hub: every format converts
//! its requests, responses, errors and streams to and from Claude, so A → B is A → Claude → B
//! and a fifth format needs one module, not four.
//!
//! Each format module (`openai_chat`, `responses`, `gemini`) provides, with these names:
//! - `request_to_claude(&Value) -> Result<Value, ConvertError>` — a client request of that
//!   format as a Claude Messages request (model kept as is);
//! - `request_from_claude(&Value) -> Result<Value, ConvertError>` — a Claude request as that
//!   format's upstream request (model kept as is; Gemini carries the model in the URL, so its
//!   body has none);
//! - `response_to_claude(&Value) -> Result<Value, ConvertError>` and
//!   `response_from_claude(&Value) -> Result<Value, ConvertError>` — complete non-streaming
//!   answers;
//! - `error_from_claude(status, &Value) -> Value` — an error body in that format;
//! - `StreamToClaude` and `StreamFromClaude`, both implementing [`StreamConverter`]: event
//!   translators fed one parsed SSE event at a time (input may come from arbitrarily split
//!   chunks: parsing is `super::sse::SseParser`'s job).

pub mod gemini;
pub mod openai_chat;
pub mod responses;

use serde_json::Value;

use super::sse::SseEvent;

/// A request or answer that cannot be converted faithfully.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConvertError {
    /// The target format lacks a feature the input uses, and dropping it would change meaning.
    #[error("cannot convert: {feature} is not supported by the target format")]
    Unsupported {
        /// The feature, named as the client would know it (e.g. `n > 1`, `audio input`).
        feature: String,
    },
    /// The input is malformed for its own format.
    #[error("invalid {format} payload: {message}")]
    Invalid {
        /// The format being read.
        format: &'static str,
        /// What is wrong.
        message: String,
    },
}

/// One SSE event to send: optional `event:` name and its `data:` payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutEvent {
    /// The `event:` field, if the format uses names.
    pub event: Option<String>,
    /// The `data:` payload (JSON text, or `[DONE]`).
    pub data: String,
}

impl OutEvent {
    /// A named event with a JSON payload.
    pub fn named(event: &str, data: &Value) -> Self {
        Self {
            event: Some(event.to_string()),
            data: data.to_string(),
        }
    }

    /// An unnamed event with a JSON payload.
    pub fn data(data: &Value) -> Self {
        Self {
            event: None,
            data: data.to_string(),
        }
    }

    /// The event serialised as SSE bytes (`event: …\ndata: …\n\n`).
    pub fn to_sse(&self) -> String {
        let mut out = String::new();
        if let Some(e) = &self.event {
            out.push_str("event: ");
            out.push_str(e);
            out.push('\n');
        }
        for line in self.data.split('\n') {
            out.push_str("data: ");
            out.push_str(line);
            out.push('\n');
        }
        out.push('\n');
        out
    }
}

/// Translates one stream format into another, event by event, with whatever state the
/// translation needs (open content blocks, tool-call indexes, accumulated usage).
pub trait StreamConverter: Send {
    /// Consumes one upstream event and returns the events to send now (possibly none).
    fn push(&mut self, event: &SseEvent) -> Result<Vec<OutEvent>, ConvertError>;
    /// The upstream ended: returns closing events (e.g. `message_stop`, `[DONE]`,
    /// `response.completed`) if the upstream did not send them.
    fn finish(&mut self) -> Vec<OutEvent>;
    /// Ends the stream because of an error, in the target format.
    fn error(&mut self, message: &str) -> Vec<OutEvent>;
}
