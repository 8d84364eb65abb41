//! Chat Completions requests ⇄ Claude Messages requests.

use std::collections::HashSet;

use serde_json::{Map, Value, json};

use super::shared::*;
use crate::domain::convert::ConvertError;

const F: &str = "openai chat";

/// The text of a Chat content field (string or parts; text and refusal parts).
fn chat_text(content: Option<&Value>) -> String {
    match content {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Array(parts)) => parts
            .iter()
            .filter_map(|p| {
                p.get("text")
                    .or_else(|| p.get("refusal"))
                    .and_then(Value::as_str)
            })
            .collect::<Vec<_>>()
            .join(""),
        _ => String::new(),
    }
}

/// Claude blocks for a Chat user content (string or parts).
fn user_blocks(content: Option<&Value>, at: usize) -> Result<Vec<Value>, ConvertError> {
    let mut out = Vec::new();
    match content {
        Some(Value::String(s)) => {
            if !blank(s) {
                out.push(json!({"type": "text", "text": s}));
            }
        }
        Some(Value::Array(parts)) => {
            for p in parts {
                match p.get("type").and_then(Value::as_str).unwrap_or("") {
                    "text" => {
                        let t = p.get("text").and_then(Value::as_str).unwrap_or("");
                        if !blank(t) {
                            out.push(json!({"type": "text", "text": t}));
                        }
                    }
                    "image_url" => {
                        let url = p
                            .get("image_url")
                            .and_then(|i| i.get("url").or(Some(i)))
                            .and_then(Value::as_str)
                            .ok_or_else(|| {
                                invalid(F, format!("messages[{at}]: image_url without url"))
                            })?;
                        out.push(claude_image_from_url(url, F)?);
                    }
                    "file" => {
                        let f = p.get("file").unwrap_or(&Value::Null);
                        if let Some(data) = f.get("file_data").and_then(Value::as_str) {
                            out.push(claude_image_from_url(data, F)?);
                        } else {
                            return Err(unsupported(
                                "file_id references (not portable across providers)",
                            ));
                        }
                    }
                    "input_audio" => return Err(unsupported("audio input")),
                    other => return Err(unsupported(format!("content part type {other}"))),
                }
            }
        }
        None | Some(Value::Null) => {}
        Some(_) => {
            return Err(invalid(
                F,
                format!("messages[{at}].content must be a string or parts"),
            ));
        }
    }
    Ok(out)
}

/// A Chat Completions request as a Claude Messages request.
pub fn request_to_claude(req: &Value) -> Result<Value, ConvertError> {
    let obj = req
        .as_object()
        .ok_or_else(|| invalid(F, "request is not an object"))?;
    if obj.get("n").and_then(Value::as_u64).unwrap_or(1) > 1 {
        return Err(unsupported("n > 1"));
    }
    if obj.get("logprobs").and_then(Value::as_bool) == Some(true) {
        return Err(unsupported("logprobs"));
    }
    if obj
        .get("modalities")
        .and_then(Value::as_array)
        .is_some_and(|m| m.iter().any(|x| x == "audio"))
        || obj.get("audio").is_some_and(|a| !a.is_null())
    {
        return Err(unsupported("audio output"));
    }
    let msgs = obj
        .get("messages")
        .and_then(Value::as_array)
        .ok_or_else(|| invalid(F, "messages must be an array"))?;

    let mut out = Map::new();
    out.insert(
        "model".into(),
        obj.get("model").cloned().unwrap_or(Value::Null),
    );
    let mut system = Vec::new();
    let mut messages: Vec<Value> = Vec::new();
    let mut call_ids: HashSet<String> = HashSet::new();

    for (i, m) in msgs.iter().enumerate() {
        let role = m.get("role").and_then(Value::as_str).unwrap_or("");
        let content = m.get("content");
        match role {
            "system" | "developer" => system.push(chat_text(content)),
            "user" => {
                for b in user_blocks(content, i)? {
                    push_block(&mut messages, "user", b);
                }
            }
            "assistant" => {
                let text = chat_text(content);
                if !blank(&text) {
                    push_block(
                        &mut messages,
                        "assistant",
                        json!({"type": "text", "text": text}),
                    );
                }
                if let Some(r) = m
                    .get("refusal")
                    .and_then(Value::as_str)
                    .filter(|r| !blank(r))
                {
                    push_block(
                        &mut messages,
                        "assistant",
                        json!({"type": "text", "text": r}),
                    );
                }
                for tc in m
                    .get("tool_calls")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                {
                    let raw_id = tc.get("id").and_then(Value::as_str).unwrap_or("");
                    if raw_id.is_empty() {
                        return Err(invalid(F, format!("messages[{i}]: tool call without id")));
                    }
                    let f = tc.get("function").unwrap_or(&Value::Null);
                    let name = f.get("name").and_then(Value::as_str).unwrap_or("");
                    let input = parse_arguments(f.get("arguments"), raw_id, F)?;
                    let id = claude_tool_id(raw_id);
                    call_ids.insert(id.clone());
                    push_block(
                        &mut messages,
                        "assistant",
                        json!({"type": "tool_use", "id": id, "name": name, "input": input}),
                    );
                }
            }
            "tool" => {
                let raw = m.get("tool_call_id").and_then(Value::as_str).unwrap_or("");
                let id = claude_tool_id(raw);
                if !call_ids.contains(&id) {
                    return Err(invalid(
                        F,
                        format!("tool message for unknown tool_call_id {raw}"),
                    ));
                }
                let text = chat_text(content);
                let mut block = json!({"type": "tool_result", "tool_use_id": id});
                if !text.is_empty() {
                    block["content"] = json!(text);
                }
                push_block(&mut messages, "user", block);
            }
            "function" => return Err(unsupported("deprecated function role")),
            other => return Err(invalid(F, format!("messages[{i}]: unknown role {other:?}"))),
        }
    }
    if messages.is_empty() {
        return Err(invalid(F, "no user or assistant content to send"));
    }
    if let Some(s) = system_blocks(system) {
        out.insert("system".into(), s);
    }
    out.insert("messages".into(), Value::Array(messages));
    let max = obj
        .get("max_completion_tokens")
        .or_else(|| obj.get("max_tokens"))
        .and_then(Value::as_u64)
        .unwrap_or(DEFAULT_MAX_TOKENS);
    out.insert("max_tokens".into(), json!(max));
    sampling_to_claude(req, &mut out);
    match obj.get("stop") {
        Some(Value::String(s)) => {
            out.insert("stop_sequences".into(), json!([s]));
        }
        Some(Value::Array(a)) if !a.is_empty() => {
            out.insert("stop_sequences".into(), Value::Array(a.clone()));
        }
        _ => {}
    }
    if let Some(s) = obj.get("stream").and_then(Value::as_bool) {
        out.insert("stream".into(), json!(s));
    }
    let mut tools = Vec::new();
    for t in obj
        .get("tools")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        match t.get("type").and_then(Value::as_str).unwrap_or("function") {
            "function" => {
                let f = t.get("function").unwrap_or(&Value::Null);
                let name = f
                    .get("name")
                    .and_then(Value::as_str)
                    .ok_or_else(|| invalid(F, "function tool without name"))?;
                let mut tool = json!({"name": name,
                    "input_schema": f.get("parameters").cloned().unwrap_or_else(|| json!({"type": "object", "properties": {}}))});
                if let Some(d) = f.get("description").and_then(Value::as_str) {
                    tool["description"] = json!(d);
                }
                tools.push(tool);
            }
            other => return Err(unsupported(format!("{other} tools"))),
        }
    }
    if !tools.is_empty() {
        out.insert("tools".into(), Value::Array(tools));
        if let Some(tc) = obj.get("tool_choice").and_then(tool_choice_to_claude) {
            out.insert("tool_choice".into(), tc);
        }
    }
    parallel_to_claude(req, &mut out);
    if let Some(rf) = obj.get("response_format") {
        let ty = rf.get("type").and_then(Value::as_str).unwrap_or("text");
        format_to_claude(ty, rf.pointer("/json_schema/schema"), &mut out)?;
    }
    apply_effort(
        &mut out,
        obj.get("reasoning_effort").and_then(Value::as_str),
    );
    if let Some(u) = obj
        .get("safety_identifier")
        .or_else(|| obj.get("user"))
        .and_then(Value::as_str)
    {
        out.insert("metadata".into(), json!({"user_id": u}));
    }
    Ok(Value::Object(out))
}

/// A Claude Messages request as a Chat Completions request. `max_tokens` becomes
/// `max_completion_tokens` (rename it for relays that only know `max_tokens`); a stream asks
/// for usage (`stream_options.include_usage`) so cch can account it.
pub fn request_from_claude(req: &Value) -> Result<Value, ConvertError> {
    let obj = req
        .as_object()
        .ok_or_else(|| invalid("claude", "request is not an object"))?;
    let msgs = obj
        .get("messages")
        .and_then(Value::as_array)
        .ok_or_else(|| invalid("claude", "messages must be an array"))?;
    let mut out = Map::new();
    out.insert(
        "model".into(),
        obj.get("model").cloned().unwrap_or(Value::Null),
    );
    let mut messages = Vec::new();
    let sys = claude_text(obj.get("system"));
    if !sys.is_empty() {
        messages.push(json!({"role": "system", "content": sys}));
    }
    for m in msgs {
        let role = m.get("role").and_then(Value::as_str).unwrap_or("");
        match role {
            "system" => {
                let t = claude_text(m.get("content"));
                if !t.is_empty() {
                    messages.push(json!({"role": "system", "content": t}));
                }
            }
            "user" => user_from_claude(m.get("content"), &mut messages)?,
            "assistant" => {
                let mut text = String::new();
                let mut calls = Vec::new();
                for b in claude_blocks(m.get("content")) {
                    match block_type(&b) {
                        "text" => text.push_str(b.get("text").and_then(Value::as_str).unwrap_or("")),
                        "tool_use" => calls.push(json!({
                            "id": b.get("id").and_then(Value::as_str).unwrap_or(""),
                            "type": "function",
                            "function": {"name": b.get("name").and_then(Value::as_str).unwrap_or(""),
                                          "arguments": b.get("input").cloned().unwrap_or_else(|| json!({})).to_string()}})),
                        _ => {} // thinking, redacted_thinking, server-tool blocks: no Chat slot
                    }
                }
                let mut msg = json!({"role": "assistant", "content": if text.is_empty() { Value::Null } else { json!(text) }});
                if !calls.is_empty() {
                    msg["tool_calls"] = Value::Array(calls);
                } else if text.is_empty() {
                    continue;
                }
                messages.push(msg);
            }
            other => return Err(invalid("claude", format!("unknown role {other:?}"))),
        }
    }
    if let Some(last) = messages.last()
        && last.get("role").and_then(Value::as_str) == Some("assistant")
        && last.get("tool_calls").is_none()
    {
        return Err(unsupported("assistant prefill"));
    }
    out.insert("messages".into(), Value::Array(messages));
    if let Some(n) = obj.get("max_tokens").and_then(Value::as_u64) {
        out.insert("max_completion_tokens".into(), json!(n));
    }
    for k in ["temperature", "top_p"] {
        if let Some(v) = obj.get(k).filter(|v| v.is_number()) {
            out.insert(k.into(), v.clone());
        }
    }
    if let Some(stops) = obj
        .get("stop_sequences")
        .and_then(Value::as_array)
        .filter(|s| !s.is_empty())
    {
        if stops.len() > 4 {
            return Err(unsupported("more than 4 stop sequences"));
        }
        out.insert("stop".into(), Value::Array(stops.clone()));
    }
    if obj.get("stream").and_then(Value::as_bool) == Some(true) {
        out.insert("stream".into(), json!(true));
        out.insert("stream_options".into(), json!({"include_usage": true}));
    }
    let tools = tools_from_claude(obj.get("tools"), true);
    if !tools.is_empty() {
        out.insert("tools".into(), Value::Array(tools));
        if let Some(tc) = obj.get("tool_choice") {
            let chat = match tc.get("type").and_then(Value::as_str) {
                Some("any") => json!("required"),
                Some("none") => json!("none"),
                Some("tool") => {
                    json!({"type": "function", "function": {"name": tc.get("name").cloned().unwrap_or(Value::Null)}})
                }
                _ => json!("auto"),
            };
            out.insert("tool_choice".into(), chat);
            if tc.get("disable_parallel_tool_use").and_then(Value::as_bool) == Some(true) {
                out.insert("parallel_tool_calls".into(), json!(false));
            }
        }
    }
    if let Some(e) = effort_from_claude(req) {
        out.insert("reasoning_effort".into(), json!(e));
    }
    if let Some(schema) = req
        .pointer("/output_config/format")
        .filter(|f| f.get("type").and_then(Value::as_str) == Some("json_schema"))
        .and_then(|f| f.get("schema"))
    {
        out.insert(
            "response_format".into(),
            json!({"type": "json_schema", "json_schema": {"name": "output", "schema": schema}}),
        );
    }
    identity_from_claude(req, &mut out);
    Ok(Value::Object(out))
}

/// Claude tools as OpenAI function tools (`nested`: Chat's `{type, function:{…}}`, else the
/// flat Responses shape). Server tools (versioned `type`) are dropped: only Anthropic runs them.
pub(crate) fn tools_from_claude(tools: Option<&Value>, nested: bool) -> Vec<Value> {
    let mut out = Vec::new();
    for t in tools.and_then(Value::as_array).into_iter().flatten() {
        let ty = t.get("type").and_then(Value::as_str).unwrap_or("custom");
        if ty != "custom" || t.get("input_schema").is_none() {
            continue;
        }
        let mut f = json!({
            "name": t.get("name").cloned().unwrap_or(Value::Null),
            "parameters": t.get("input_schema").cloned().unwrap_or(Value::Null),
        });
        if let Some(d) = t.get("description") {
            f["description"] = d.clone();
        }
        if nested {
            out.push(json!({"type": "function", "function": f}));
        } else {
            f["type"] = json!("function");
            f["strict"] = json!(false);
            out.push(f);
        }
    }
    out
}

/// A Claude user message as Chat messages: one `tool` message per result (in order), then one
/// `user` message with the rest, including images found inside tool results (Chat tool
/// messages carry text only), each introduced by a note naming the call.
fn user_from_claude(content: Option<&Value>, out: &mut Vec<Value>) -> Result<(), ConvertError> {
    let mut parts: Vec<Value> = Vec::new();
    let mut relocated: Vec<Value> = Vec::new();
    for b in claude_blocks(content) {
        match block_type(&b) {
            "text" => {
                let t = b.get("text").and_then(Value::as_str).unwrap_or("");
                if !t.is_empty() {
                    parts.push(json!({"type": "text", "text": t}));
                }
            }
            "image" => parts
                .push(json!({"type": "image_url", "image_url": {"url": claude_source_url(&b)?}})),
            "document" => parts.push(document_part(&b)?),
            "tool_result" => {
                let id = b.get("tool_use_id").and_then(Value::as_str).unwrap_or("");
                let mut text = String::new();
                for inner in claude_blocks(b.get("content")) {
                    match block_type(&inner) {
                        "text" => {
                            text.push_str(inner.get("text").and_then(Value::as_str).unwrap_or(""))
                        }
                        "image" => {
                            relocated.push(json!({"type": "text", "text": format!("[image from tool result {id}]")}));
                            relocated.push(json!({"type": "image_url", "image_url": {"url": claude_source_url(&inner)?}}));
                        }
                        "document" => {
                            relocated.push(json!({"type": "text", "text": format!("[document from tool result {id}]")}));
                            relocated.push(document_part(&inner)?);
                        }
                        _ => {}
                    }
                }
                if b.get("is_error").and_then(Value::as_bool) == Some(true) {
                    text = format!("Error: {text}");
                }
                out.push(json!({"role": "tool", "tool_call_id": id, "content": text}));
            }
            _ => {}
        }
    }
    relocated.extend(parts);
    match relocated.as_slice() {
        [] => {}
        [one] if block_type(one) == "text" => out.push(
            json!({"role": "user", "content": one.get("text").cloned().unwrap_or(Value::Null)}),
        ),
        _ => out.push(json!({"role": "user", "content": relocated})),
    }
    Ok(())
}

fn document_part(b: &Value) -> Result<Value, ConvertError> {
    if b.pointer("/source/type").and_then(Value::as_str) == Some("text") {
        let t = b
            .pointer("/source/data")
            .and_then(Value::as_str)
            .unwrap_or("");
        return Ok(json!({"type": "text", "text": t}));
    }
    let url = claude_source_url(b)?;
    if !url.starts_with("data:") {
        return Err(unsupported("document URL"));
    }
    Ok(json!({"type": "file", "file": {"file_data": url, "filename": "document.pdf"}}))
}
