//! Conversion between the OpenAI Responses API and Claude Messages (see `convert` for the
//! contract).
//!
//! Usage mapping: Responses `input_tokens` counts all input, cached included; Claude's
//! `input_tokens` excludes cache reads and writes. So Claude `input_tokens` = `input_tokens` −
//! `input_tokens_details.cached_tokens` − `input_tokens_details.cache_write_tokens` (not
//! below 0); the reverse adds them back, and `output_tokens_details.reasoning_tokens` comes
//! from Claude's `output_tokens_details.thinking_tokens` (0 when Claude did not report it).
//!
//! Reasoning replay: Claude thinking shown to a Responses client travels in the reasoning
//! item's `encrypted_content` as a cch envelope (`cch1.anthropic.<base64url JSON>`) and comes
//! back as the original thinking block; OpenAI reasoning shown to a Claude client travels in
//! the thinking `signature` (`cch1.openai.…`, with the item id and `encrypted_content`).
//! Foreign or bare reasoning is dropped when converting requests.

mod request;
mod response;
mod stream;

#[cfg(test)]
mod stream_tests;
#[cfg(test)]
mod tests;

pub use request::{ResponsesContext, request_from_claude, request_to_claude};
pub use response::{
    error_from_claude, response_from_claude, response_from_claude_with, response_to_claude,
    usage_from_claude, usage_to_claude,
};
pub use stream::{StreamFromClaude, StreamToClaude};
