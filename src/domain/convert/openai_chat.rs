//! Conversion between OpenAI Chat Completions and Claude Messages (see `convert` for the
//! contract).
//!
//! Usage mapping: Chat `prompt_tokens` counts all input, cached included; Claude's
//! `input_tokens` excludes cache reads and writes. So Claude `input_tokens` = `prompt_tokens` −
//! `prompt_tokens_details.cached_tokens` − `prompt_tokens_details.cache_write_tokens` (not
//! below 0), `cache_read_input_tokens` = `cached_tokens`, `cache_creation_input_tokens` =
//! `cache_write_tokens`; the reverse adds them back. Output counts include reasoning on both
//! sides.

mod claude_stream;
mod request;
mod response;
pub(super) mod shared;
mod stream;

#[cfg(test)]
mod stream_tests;
#[cfg(test)]
pub(super) mod test_util;
#[cfg(test)]
mod tests;
#[cfg(test)]
pub(super) use stream_tests::{
    CLAUDE_STREAM as CLAUDE_STREAM_FIXTURE, random_json as random_json_for_tests,
};
#[cfg(test)]
pub(super) use test_util::PassThrough;

pub(super) use claude_stream::{
    ClaudeEv, ClaudeWriter, claude_error_type, openai_error_from_claude, read_claude,
};
pub(super) use request::tools_from_claude;
pub use request::{request_from_claude, request_to_claude};
pub use response::{
    error_from_claude, response_from_claude, response_from_claude_at, response_to_claude,
    usage_from_claude, usage_to_claude,
};
pub use shared::DEFAULT_MAX_TOKENS;
pub use stream::{StreamFromClaude, StreamToClaude};
