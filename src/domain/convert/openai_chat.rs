//! Conversion between this format and Claude Messages (see `convert` for the contract).
use super::{ConvertError, OutEvent, StreamConverter};
use crate::domain::sse::SseEvent;
use serde_json::Value;
fn no() -> ConvertError {
    ConvertError::Unsupported {
        feature: "x".into(),
    }
}
pub fn request_to_claude(_b: &Value) -> Result<Value, ConvertError> {
    Err(no())
}
pub fn request_from_claude(_b: &Value) -> Result<Value, ConvertError> {
    Err(no())
}
pub fn response_to_claude(_b: &Value) -> Result<Value, ConvertError> {
    Err(no())
}
pub fn response_from_claude(_b: &Value) -> Result<Value, ConvertError> {
    Err(no())
}
pub struct StreamToClaude;
impl StreamToClaude {
    pub fn new() -> Self {
        Self
    }
}
pub struct StreamFromClaude;
impl StreamFromClaude {
    pub fn new() -> Self {
        Self
    }
}
impl StreamConverter for StreamToClaude {
    fn push(&mut self, _e: &SseEvent) -> Result<Vec<OutEvent>, ConvertError> {
        Err(no())
    }
    fn finish(&mut self) -> Vec<OutEvent> {
        vec![]
    }
    fn error(&mut self, _m: &str) -> Vec<OutEvent> {
        vec![]
    }
}
impl StreamConverter for StreamFromClaude {
    fn push(&mut self, _e: &SseEvent) -> Result<Vec<OutEvent>, ConvertError> {
        Err(no())
    }
    fn finish(&mut self) -> Vec<OutEvent> {
        vec![]
    }
    fn error(&mut self, _m: &str) -> Vec<OutEvent> {
        vec![]
    }
}
