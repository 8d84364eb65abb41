//! Picks the converter for a format: the functions the proxy calls, so it never names a
//! format module itself. Claude is the hub, so Claude → Claude is the identity.

use serde_json::Value;

use super::super::format::ClientFormat;
use super::{ConvertError, StreamConverter, gemini, openai_chat, responses};

/// A request of format `from` as a Claude request.
pub fn request_to_claude(from: ClientFormat, body: &Value) -> Result<Value, ConvertError> {
    match from {
        ClientFormat::Claude => Ok(body.clone()),
        ClientFormat::OpenAi => openai_chat::request_to_claude(body),
        ClientFormat::Response => responses::request_to_claude(body),
        ClientFormat::Gemini => gemini::request_to_claude(body),
    }
}

/// A Claude request as format `to`.
pub fn request_from_claude(to: ClientFormat, body: &Value) -> Result<Value, ConvertError> {
    match to {
        ClientFormat::Claude => Ok(body.clone()),
        ClientFormat::OpenAi => openai_chat::request_from_claude(body),
        ClientFormat::Response => responses::request_from_claude(body),
        ClientFormat::Gemini => gemini::request_from_claude(body),
    }
}

/// A complete answer of format `from` as a Claude message.
pub fn response_to_claude(from: ClientFormat, body: &Value) -> Result<Value, ConvertError> {
    match from {
        ClientFormat::Claude => Ok(body.clone()),
        ClientFormat::OpenAi => openai_chat::response_to_claude(body),
        ClientFormat::Response => responses::response_to_claude(body),
        ClientFormat::Gemini => gemini::response_to_claude(body),
    }
}

/// A Claude message as a complete answer of format `to`.
pub fn response_from_claude(to: ClientFormat, body: &Value) -> Result<Value, ConvertError> {
    match to {
        ClientFormat::Claude => Ok(body.clone()),
        ClientFormat::OpenAi => openai_chat::response_from_claude(body),
        ClientFormat::Response => responses::response_from_claude(body),
        ClientFormat::Gemini => gemini::response_from_claude(body),
    }
}

/// A stream translator from format `from` to Claude events (`None` for Claude itself).
pub fn stream_to_claude(from: ClientFormat) -> Option<Box<dyn StreamConverter>> {
    match from {
        ClientFormat::Claude => None,
        ClientFormat::OpenAi => Some(Box::new(openai_chat::StreamToClaude::new())),
        ClientFormat::Response => Some(Box::new(responses::StreamToClaude::new())),
        ClientFormat::Gemini => Some(Box::new(gemini::StreamToClaude::new())),
    }
}

/// A stream translator from Claude events to format `to` (`None` for Claude itself).
pub fn stream_from_claude(to: ClientFormat) -> Option<Box<dyn StreamConverter>> {
    match to {
        ClientFormat::Claude => None,
        ClientFormat::OpenAi => Some(Box::new(openai_chat::StreamFromClaude::new())),
        ClientFormat::Response => Some(Box::new(responses::StreamFromClaude::new())),
        ClientFormat::Gemini => Some(Box::new(gemini::StreamFromClaude::new())),
    }
}
