//! Chat Completions responses ⇄ Claude Messages responses (non-streaming), usage and errors.

use serde_json::{Value, json};

use super::claude_stream::openai_error_from_claude;
use super::shared::*;
use crate::domain::convert::ConvertError;

const F: &str = "openai chat";

/// A Chat usage object as a Claude usage object: `input_tokens` = `prompt_tokens` minus
/// `cached_tokens` and `cache_write_tokens` (Claude's input excludes cache reads and writes).
pub fn usage_to_claude(usage: &Value) -> Value {
    Tokens::from_openai(usage, true).to_claude()
}

/// A Claude usage object as a Chat usage object: `prompt_tokens` = input + cache reads + cache
/// writes, `cached_tokens` = cache reads.
pub fn usage_from_claude(usage: &Value) -> Value {
    Tokens::from_claude(usage).to_chat()
}

/// A complete Chat Completions response as a Claude Messages response (first choice only;
/// cch never asks for more).
pub fn response_to_claude(resp: &Value) -> Result<Value, ConvertError> {
    if let Some(e) = resp.get("error").filter(|e| !e.is_null()) {
        let msg = e
            .get("message")
            .and_then(Value::as_str)
            .unwrap_or("upstream error");
        return Err(invalid(
            F,
            format!("upstream answered with an error: {msg}"),
        ));
    }
    let choice = resp
        .get("choices")
        .and_then(Value::as_array)
        .and_then(|c| c.first())
        .ok_or_else(|| invalid(F, "response has no choices"))?;
    let msg = choice.get("message").unwrap_or(&Value::Null);
    let id = resp.get("id").and_then(Value::as_str).unwrap_or("chatcmpl");
    let mut content = Vec::new();
    if let Some(r) = msg
        .get("reasoning_content")
        .or_else(|| msg.get("reasoning"))
        .and_then(Value::as_str)
        .filter(|r| !blank(r))
    {
        content.push(json!({"type": "thinking", "thinking": r, "signature": ENVELOPE_OPENAI}));
    }
    let text = match msg.get("content") {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Array(parts)) => parts
            .iter()
            .filter_map(|p| p.get("text").and_then(Value::as_str))
            .collect(),
        _ => String::new(),
    };
    if !blank(&text) {
        content.push(json!({"type": "text", "text": text}));
    }
    let refusal = msg
        .get("refusal")
        .and_then(Value::as_str)
        .filter(|r| !blank(r));
    if let Some(r) = refusal {
        content.push(json!({"type": "text", "text": r}));
    }
    let calls = msg.get("tool_calls").and_then(Value::as_array);
    for (i, tc) in calls.into_iter().flatten().enumerate() {
        let f = tc.get("function").unwrap_or(&Value::Null);
        let raw = tc
            .get("id")
            .and_then(Value::as_str)
            .map(str::to_string)
            .unwrap_or_else(|| synthetic_call_id(id, i as u64));
        let input = parse_arguments(f.get("arguments"), &raw, F)?;
        content.push(json!({"type": "tool_use", "id": claude_tool_id(&raw),
            "name": f.get("name").and_then(Value::as_str).unwrap_or(""), "input": input}));
    }
    let has_calls = calls.is_some_and(|c| !c.is_empty());
    let stop = match choice.get("finish_reason").and_then(Value::as_str) {
        _ if refusal.is_some() => "refusal",
        Some(r) => chat_finish_to_claude(r, has_calls),
        None if has_calls => "tool_use",
        None => "end_turn",
    };
    let usage = resp
        .get("usage")
        .map(|u| Tokens::from_openai(u, true))
        .unwrap_or_default();
    Ok(json!({
        "id": if id.starts_with("msg_") { id.to_string() } else { format!("msg_{id}") },
        "type": "message", "role": "assistant",
        "model": resp.get("model").cloned().unwrap_or(Value::Null),
        "content": content, "stop_reason": stop, "stop_sequence": null,
        "usage": usage.to_claude(),
    }))
}

/// A complete Claude Messages response as a Chat Completions response (`created` 0; see
/// [`response_from_claude_at`]). Thinking blocks have no Chat field and are dropped.
pub fn response_from_claude(resp: &Value) -> Result<Value, ConvertError> {
    response_from_claude_at(resp, 0)
}

/// [`response_from_claude`] with the `created` timestamp (seconds) supplied by the caller.
pub fn response_from_claude_at(resp: &Value, created: i64) -> Result<Value, ConvertError> {
    let blocks = resp
        .get("content")
        .and_then(Value::as_array)
        .ok_or_else(|| invalid("claude", "response has no content array"))?;
    let mut text = String::new();
    let mut calls = Vec::new();
    for b in blocks {
        match block_type(b) {
            "text" => text.push_str(b.get("text").and_then(Value::as_str).unwrap_or("")),
            "tool_use" => calls.push(json!({
                "id": b.get("id").cloned().unwrap_or(Value::Null), "type": "function",
                "function": {"name": b.get("name").cloned().unwrap_or(Value::Null),
                             "arguments": b.get("input").cloned().unwrap_or_else(|| json!({})).to_string()}})),
            _ => {}
        }
    }
    let stop = resp
        .get("stop_reason")
        .and_then(Value::as_str)
        .unwrap_or("end_turn");
    let mut message = json!({"role": "assistant",
        "content": if text.is_empty() && !calls.is_empty() { Value::Null } else { json!(text) },
        "refusal": null});
    if !calls.is_empty() {
        message["tool_calls"] = Value::Array(calls);
    }
    let id = resp.get("id").and_then(Value::as_str).unwrap_or("msg");
    Ok(json!({
        "id": format!("chatcmpl-{id}"), "object": "chat.completion", "created": created,
        "model": resp.get("model").cloned().unwrap_or(Value::Null),
        "choices": [{"index": 0, "message": message, "logprobs": null,
                     "finish_reason": claude_stop_to_chat(stop)}],
        "usage": Tokens::from_claude(resp.get("usage").unwrap_or(&Value::Null)).to_chat(),
    }))
}

/// A Claude error (HTTP status and body) as a Chat Completions error body.
pub fn error_from_claude(status: u16, body: &Value) -> Value {
    openai_error_from_claude(status, body)
}
