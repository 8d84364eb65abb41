//! Responses API responses ⇄ Claude Messages responses (non-streaming), usage and errors.

use serde_json::{Value, json};

use super::super::openai_chat::shared::*;
use super::ResponsesContext;
use crate::domain::convert::ConvertError;

const F: &str = "openai responses";

/// A Responses usage object as a Claude usage object: `input_tokens` = `input_tokens` −
/// `cached_tokens` − `cache_write_tokens` (not below 0); cache reads and writes go to their
/// Claude fields.
pub fn usage_to_claude(usage: &Value) -> Value {
    Tokens::from_openai(usage, false).to_claude()
}

/// A Claude usage object as a Responses usage object (input = fresh + cache reads + cache
/// writes; all five fields present).
pub fn usage_from_claude(usage: &Value) -> Value {
    Tokens::from_claude(usage).to_responses()
}

/// The Claude thinking signature carrying an OpenAI reasoning item (its id and
/// `encrypted_content`), so the item can be replayed to a Responses upstream.
pub(crate) fn openai_reasoning_signature(item: &Value) -> String {
    envelope(
        ENVELOPE_OPENAI,
        &json!({"id": item.get("id").cloned().unwrap_or(Value::Null),
                "encrypted_content": item.get("encrypted_content").cloned().unwrap_or(Value::Null)}),
    )
}

/// A complete Responses response as a Claude Messages response.
pub fn response_to_claude(resp: &Value) -> Result<Value, ConvertError> {
    let status = resp
        .get("status")
        .and_then(Value::as_str)
        .unwrap_or("completed");
    if status == "failed" || status == "cancelled" {
        let msg = resp
            .pointer("/error/message")
            .and_then(Value::as_str)
            .unwrap_or(status);
        return Err(invalid(F, format!("upstream response {status}: {msg}")));
    }
    let output = resp
        .get("output")
        .and_then(Value::as_array)
        .ok_or_else(|| invalid(F, "response has no output array"))?;
    let id = resp.get("id").and_then(Value::as_str).unwrap_or("resp");
    let mut content = Vec::new();
    let mut saw_call = false;
    let mut refusal = false;
    for (i, item) in output.iter().enumerate() {
        match item.get("type").and_then(Value::as_str).unwrap_or("") {
            "reasoning" => {
                let text = item
                    .get("summary")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .filter_map(|s| s.get("text").and_then(Value::as_str))
                    .collect::<Vec<_>>()
                    .join("\n\n");
                if item.get("encrypted_content").is_some_and(|e| e.is_string()) || !text.is_empty()
                {
                    content.push(json!({"type": "thinking", "thinking": text, "signature": openai_reasoning_signature(item)}));
                }
            }
            "message" => {
                for p in item
                    .get("content")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                {
                    let (t, is_refusal) = match p.get("type").and_then(Value::as_str) {
                        Some("refusal") => (p.get("refusal"), true),
                        _ => (p.get("text"), false),
                    };
                    if let Some(t) = t.and_then(Value::as_str).filter(|t| !blank(t)) {
                        content.push(json!({"type": "text", "text": t}));
                        refusal |= is_refusal;
                    }
                }
            }
            ty @ ("function_call" | "custom_tool_call") => {
                saw_call = true;
                let raw = item
                    .get("call_id")
                    .and_then(Value::as_str)
                    .map(str::to_string)
                    .unwrap_or_else(|| synthetic_call_id(id, i as u64));
                let input = if ty == "custom_tool_call" {
                    json!({"input": item.get("input").and_then(Value::as_str).unwrap_or("")})
                } else {
                    parse_arguments(item.get("arguments"), &raw, F)?
                };
                let name = item.get("name").and_then(Value::as_str).unwrap_or("");
                let name = match item.get("namespace").and_then(Value::as_str) {
                    Some(ns) if !ns.is_empty() => format!("{ns}__{name}"),
                    _ => name.to_string(),
                };
                content.push(json!({"type": "tool_use", "id": claude_tool_id(&raw), "name": name, "input": input}));
            }
            _ => {}
        }
    }
    let stop = stop_to_claude(
        status,
        resp.pointer("/incomplete_details/reason")
            .and_then(Value::as_str),
        saw_call,
        refusal,
    );
    let usage = resp
        .get("usage")
        .filter(|u| u.is_object())
        .map(|u| Tokens::from_openai(u, false))
        .unwrap_or_default();
    Ok(json!({
        "id": if id.starts_with("msg_") { id.to_string() } else { format!("msg_{id}") },
        "type": "message", "role": "assistant", "model": resp.get("model").cloned().unwrap_or(Value::Null),
        "content": content, "stop_reason": stop, "stop_sequence": null, "usage": usage.to_claude(),
    }))
}

/// Claude `stop_reason` for a Responses terminal status.
pub(crate) fn stop_to_claude(
    status: &str,
    reason: Option<&str>,
    saw_call: bool,
    refusal: bool,
) -> &'static str {
    match (status, reason) {
        ("incomplete", Some("content_filter")) => "refusal",
        ("incomplete", _) => "max_tokens",
        _ if refusal => "refusal",
        _ if saw_call => "tool_use",
        _ => "end_turn",
    }
}

/// Responses `status` and `incomplete_details` for a Claude `stop_reason`.
pub(crate) fn status_from_claude(stop: &str) -> (&'static str, Value) {
    match stop {
        "max_tokens" | "model_context_window_exceeded" => {
            ("incomplete", json!({"reason": "max_output_tokens"}))
        }
        "refusal" => ("incomplete", json!({"reason": "content_filter"})),
        _ => ("completed", Value::Null),
    }
}

/// Output items for one Claude content block (the item ids derive from the message id and
/// the block position).
pub(crate) fn item_from_block(
    b: &Value,
    msg_id: &str,
    n: usize,
    ctx: &ResponsesContext,
) -> Option<Value> {
    match block_type(b) {
        "text" => Some(
            json!({"type": "message", "id": format!("msg_{msg_id}_{n}"), "status": "completed", "role": "assistant",
            "content": [{"type": "output_text", "text": b.get("text").cloned().unwrap_or(json!("")), "annotations": []}]}),
        ),
        "thinking" => {
            let text = b.get("thinking").and_then(Value::as_str).unwrap_or("");
            let sig = b.get("signature").and_then(Value::as_str).unwrap_or("");
            Some(reasoning_item(
                &format!("rs_{msg_id}_{n}"),
                text,
                &json!({"thinking": text, "signature": sig}),
            ))
        }
        "redacted_thinking" => Some(reasoning_item(
            &format!("rs_{msg_id}_{n}"),
            "",
            &json!({"redacted": b.get("data").cloned().unwrap_or(json!(""))}),
        )),
        "tool_use" => {
            let name = b.get("name").and_then(Value::as_str).unwrap_or("");
            let call_id = b.get("id").cloned().unwrap_or(Value::Null);
            let input = b.get("input").cloned().unwrap_or_else(|| json!({}));
            Some(call_item(
                &format!("fc_{msg_id}_{n}"),
                &call_id,
                name,
                &input.to_string(),
                ctx,
                "completed",
            ))
        }
        _ => None,
    }
}

pub(crate) fn reasoning_item(id: &str, text: &str, payload: &Value) -> Value {
    let summary = if text.is_empty() {
        vec![]
    } else {
        vec![json!({"type": "summary_text", "text": text})]
    };
    json!({"type": "reasoning", "id": id, "summary": summary, "encrypted_content": envelope(ENVELOPE_ANTHROPIC, payload)})
}

/// A `function_call` item (or `custom_tool_call`, or namespaced, per the context).
pub(crate) fn call_item(
    id: &str,
    call_id: &Value,
    name: &str,
    args: &str,
    ctx: &ResponsesContext,
    status: &str,
) -> Value {
    let (ns, short) = match ctx.namespaced.get(name) {
        Some((ns, n)) => (Some(ns.as_str()), n.as_str()),
        None => (None, name),
    };
    let mut item = if ctx.custom.contains(name) {
        let input = serde_json::from_str::<Value>(args)
            .ok()
            .and_then(|v| v.get("input").and_then(Value::as_str).map(str::to_string))
            .unwrap_or_default();
        json!({"type": "custom_tool_call", "id": id, "call_id": call_id, "name": short, "input": input, "status": status})
    } else {
        json!({"type": "function_call", "id": id, "call_id": call_id, "name": short, "arguments": args, "status": status})
    };
    if let Some(ns) = ns {
        item["namespace"] = json!(ns);
    }
    item
}

/// A Claude response as a Responses response (`created_at` 0; see
/// [`response_from_claude_with`]).
pub fn response_from_claude(resp: &Value) -> Result<Value, ConvertError> {
    response_from_claude_with(resp, &ResponsesContext::default(), 0)
}

/// [`response_from_claude`] with the client's tool context and the `created_at` timestamp.
pub fn response_from_claude_with(
    resp: &Value,
    ctx: &ResponsesContext,
    created_at: i64,
) -> Result<Value, ConvertError> {
    let blocks = resp
        .get("content")
        .and_then(Value::as_array)
        .ok_or_else(|| invalid("claude", "response has no content array"))?;
    let msg_id = resp.get("id").and_then(Value::as_str).unwrap_or("msg");
    let output: Vec<Value> = blocks
        .iter()
        .enumerate()
        .filter_map(|(n, b)| item_from_block(b, msg_id, n, ctx))
        .collect();
    let (status, incomplete) = status_from_claude(
        resp.get("stop_reason")
            .and_then(Value::as_str)
            .unwrap_or("end_turn"),
    );
    Ok(json!({
        "id": format!("resp_{msg_id}"), "object": "response", "created_at": created_at, "status": status,
        "model": resp.get("model").cloned().unwrap_or(Value::Null), "output": output,
        "usage": Tokens::from_claude(resp.get("usage").unwrap_or(&Value::Null)).to_responses(),
        "incomplete_details": incomplete, "error": null,
        "parallel_tool_calls": true, "tool_choice": "auto", "tools": [],
    }))
}

/// A Claude error (status and body) as a Responses error body (the Chat envelope).
pub fn error_from_claude(status: u16, body: &Value) -> Value {
    super::super::openai_chat::openai_error_from_claude(status, body)
}
