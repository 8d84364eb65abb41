//! Responses API requests ⇄ Claude Messages requests.

use std::collections::{HashMap, HashSet};

use serde_json::{Map, Value, json};

use super::super::openai_chat::shared::*;
use crate::domain::convert::ConvertError;

const F: &str = "openai responses";

/// What a Claude answer needs to be written back for the Responses client that made the
/// request: flattened namespace tools (`<namespace>__<name>`) and custom (free-text) tools.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ResponsesContext {
    /// Flattened name → (namespace, name).
    pub namespaced: HashMap<String, (String, String)>,
    /// Names of `custom` tools (presented to Claude as a function with one string `input`).
    pub custom: HashSet<String>,
}

impl ResponsesContext {
    /// Collects the tool-name map from the client's Responses request.
    pub fn from_request(req: &Value) -> Self {
        let mut ctx = Self::default();
        for t in req
            .get("tools")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let name = t.get("name").and_then(Value::as_str).unwrap_or("");
            match t.get("type").and_then(Value::as_str) {
                Some("namespace") => {
                    for inner in t
                        .get("tools")
                        .and_then(Value::as_array)
                        .into_iter()
                        .flatten()
                    {
                        let n = inner.get("name").and_then(Value::as_str).unwrap_or("");
                        ctx.namespaced
                            .insert(format!("{name}__{n}"), (name.to_string(), n.to_string()));
                        if inner.get("type").and_then(Value::as_str) == Some("custom") {
                            ctx.custom.insert(format!("{name}__{n}"));
                        }
                    }
                }
                Some("custom") => {
                    ctx.custom.insert(name.to_string());
                }
                _ => {}
            }
        }
        ctx
    }
}

fn text_of(content: Option<&Value>) -> String {
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

fn part_to_claude(p: &Value) -> Result<Option<Value>, ConvertError> {
    Ok(match p.get("type").and_then(Value::as_str).unwrap_or("") {
        "input_text" | "output_text" | "text" => {
            let t = p.get("text").and_then(Value::as_str).unwrap_or("");
            (!blank(t)).then(|| json!({"type": "text", "text": t}))
        }
        "refusal" => {
            let t = p.get("refusal").and_then(Value::as_str).unwrap_or("");
            (!blank(t)).then(|| json!({"type": "text", "text": t}))
        }
        "input_image" => match p.get("image_url").and_then(Value::as_str) {
            Some(url) => Some(claude_image_from_url(url, F)?),
            None => {
                return Err(unsupported(
                    "file_id references (not portable across providers)",
                ));
            }
        },
        "input_file" => match p.get("file_data").and_then(Value::as_str) {
            Some(d) if d.starts_with("data:") => Some(claude_image_from_url(d, F)?),
            Some(d) => Some(
                json!({"type": "document", "source": {"type": "base64", "media_type": "application/pdf", "data": d}}),
            ),
            None => match p.get("file_url").and_then(Value::as_str) {
                Some(u) => Some(json!({"type": "document", "source": {"type": "url", "url": u}})),
                None => {
                    return Err(unsupported(
                        "file_id references (not portable across providers)",
                    ));
                }
            },
        },
        "input_audio" => return Err(unsupported("audio input")),
        other => return Err(unsupported(format!("content part type {other}"))),
    })
}

fn flat_name(item: &Value) -> String {
    let name = item.get("name").and_then(Value::as_str).unwrap_or("");
    match item.get("namespace").and_then(Value::as_str) {
        Some(ns) if !ns.is_empty() => format!("{ns}__{name}"),
        _ => name.to_string(),
    }
}

/// A Responses request as a Claude Messages request. `instructions` and system/developer
/// items become `system`; namespace tools are flattened to `<namespace>__<name>`; custom tools
/// become functions with one string parameter `input`; hosted tools (`web_search`, …) are
/// dropped (the Claude provider cannot run them); stateless fields (`store`, `include`,
/// `prompt_cache_key`, `client_metadata`) are dropped.
pub fn request_to_claude(req: &Value) -> Result<Value, ConvertError> {
    let obj = req
        .as_object()
        .ok_or_else(|| invalid(F, "request is not an object"))?;
    for (k, feature) in [
        ("previous_response_id", "previous_response_id"),
        ("conversation", "conversation"),
    ] {
        if obj.get(k).is_some_and(|v| !v.is_null()) {
            return Err(unsupported(feature));
        }
    }
    if obj.get("background").and_then(Value::as_bool) == Some(true) {
        return Err(unsupported("background"));
    }
    let mut out = Map::new();
    out.insert(
        "model".into(),
        obj.get("model").cloned().unwrap_or(Value::Null),
    );
    let mut system = Vec::new();
    if let Some(i) = obj.get("instructions").and_then(Value::as_str) {
        system.push(i.to_string());
    }
    let items: Vec<Value> = match obj.get("input") {
        Some(Value::String(s)) => vec![json!({"role": "user", "content": s})],
        Some(Value::Array(a)) => a.clone(),
        Some(o @ Value::Object(_)) => vec![o.clone()],
        _ => {
            return Err(invalid(
                F,
                "input must be a string, an item or a list of items",
            ));
        }
    };
    let mut messages: Vec<Value> = Vec::new();
    let mut call_ids: HashSet<String> = HashSet::new();
    for (i, item) in items.iter().enumerate() {
        let ty = item
            .get("type")
            .and_then(Value::as_str)
            .unwrap_or("message");
        match ty {
            "message" => {
                let role = item.get("role").and_then(Value::as_str).unwrap_or("user");
                let content = item.get("content");
                match role {
                    "system" | "developer" => system.push(text_of(content)),
                    "user" | "assistant" => {
                        let blocks = match content {
                            Some(Value::String(s)) if !blank(s) => {
                                vec![json!({"type": "text", "text": s})]
                            }
                            Some(Value::Array(parts)) => {
                                let mut v = Vec::new();
                                for p in parts {
                                    if let Some(b) = part_to_claude(p)? {
                                        v.push(b);
                                    }
                                }
                                v
                            }
                            _ => Vec::new(),
                        };
                        for b in blocks {
                            push_block(&mut messages, role, b);
                        }
                    }
                    other => return Err(invalid(F, format!("input[{i}]: unknown role {other:?}"))),
                }
            }
            "function_call" | "custom_tool_call" => {
                let raw = item.get("call_id").and_then(Value::as_str).unwrap_or("");
                if raw.is_empty() {
                    return Err(invalid(F, format!("input[{i}]: {ty} without call_id")));
                }
                let input = if ty == "custom_tool_call" {
                    json!({"input": item.get("input").and_then(Value::as_str).unwrap_or("")})
                } else {
                    parse_arguments(item.get("arguments"), raw, F)?
                };
                let id = claude_tool_id(raw);
                call_ids.insert(id.clone());
                push_block(
                    &mut messages,
                    "assistant",
                    json!({"type": "tool_use", "id": id, "name": flat_name(item), "input": input}),
                );
            }
            "function_call_output" | "custom_tool_call_output" => {
                let raw = item.get("call_id").and_then(Value::as_str).unwrap_or("");
                let id = claude_tool_id(raw);
                if !call_ids.contains(&id) {
                    return Err(invalid(
                        F,
                        format!("no tool call found for output with call_id {raw}"),
                    ));
                }
                let mut block = json!({"type": "tool_result", "tool_use_id": id});
                match item.get("output") {
                    Some(Value::String(s)) if !s.is_empty() => block["content"] = json!(s),
                    Some(Value::Array(parts)) => {
                        let mut v = Vec::new();
                        for p in parts {
                            if let Some(b) = part_to_claude(p)? {
                                v.push(b);
                            }
                        }
                        if !v.is_empty() {
                            block["content"] = Value::Array(v);
                        }
                    }
                    _ => {}
                }
                push_block(&mut messages, "user", block);
            }
            "reasoning" => {
                // Only cch envelopes of Anthropic thinking can be replayed to Claude.
                let env = item
                    .get("encrypted_content")
                    .and_then(Value::as_str)
                    .unwrap_or("");
                if let Some(p) = open_envelope(ENVELOPE_ANTHROPIC, env) {
                    let block = if let Some(data) = p.get("redacted").and_then(Value::as_str) {
                        json!({"type": "redacted_thinking", "data": data})
                    } else {
                        json!({"type": "thinking", "thinking": p.get("thinking").cloned().unwrap_or(json!("")),
                               "signature": p.get("signature").cloned().unwrap_or(json!(""))})
                    };
                    push_block(&mut messages, "assistant", block);
                }
            }
            "item_reference" => return Err(unsupported("item_reference")),
            // Hosted-tool history only an OpenAI upstream can interpret.
            "web_search_call"
            | "file_search_call"
            | "image_generation_call"
            | "code_interpreter_call" => {}
            other => return Err(unsupported(format!("{other} input items"))),
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
        .get("max_output_tokens")
        .and_then(Value::as_u64)
        .unwrap_or(DEFAULT_MAX_TOKENS);
    out.insert("max_tokens".into(), json!(max));
    sampling_to_claude(req, &mut out);
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
        match t.get("type").and_then(Value::as_str).unwrap_or("") {
            "function" | "custom" => tools.push(tool_to_claude(t, None)?),
            "namespace" => {
                let ns = t.get("name").and_then(Value::as_str).unwrap_or("");
                for inner in t
                    .get("tools")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                {
                    tools.push(tool_to_claude(inner, Some(ns))?);
                }
            }
            _ => {} // hosted tools: web_search, file_search, …
        }
    }
    if !tools.is_empty() {
        out.insert("tools".into(), Value::Array(tools));
        if let Some(tc) = obj.get("tool_choice").and_then(tool_choice_to_claude) {
            out.insert("tool_choice".into(), tc);
        }
    }
    parallel_to_claude(req, &mut out);
    if let Some(f) = req.pointer("/text/format") {
        let ty = f.get("type").and_then(Value::as_str).unwrap_or("text");
        format_to_claude(ty, f.get("schema"), &mut out)?;
    }
    apply_effort(
        &mut out,
        req.pointer("/reasoning/effort").and_then(Value::as_str),
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

fn tool_to_claude(t: &Value, ns: Option<&str>) -> Result<Value, ConvertError> {
    let name = t
        .get("name")
        .and_then(Value::as_str)
        .ok_or_else(|| invalid(F, "tool without name"))?;
    let name = match ns {
        Some(ns) => format!("{ns}__{name}"),
        None => name.to_string(),
    };
    let schema = if t.get("type").and_then(Value::as_str) == Some("custom") {
        json!({"type": "object", "properties": {"input": {"type": "string"}}, "required": ["input"]})
    } else {
        t.get("parameters")
            .cloned()
            .filter(|p| !p.is_null())
            .unwrap_or_else(|| json!({"type": "object", "properties": {}}))
    };
    let mut tool = json!({"name": name, "input_schema": schema});
    if let Some(d) = t.get("description").and_then(Value::as_str) {
        tool["description"] = json!(d);
    }
    Ok(tool)
}

fn user_parts(b: &Value) -> Result<Option<Value>, ConvertError> {
    Ok(match block_type(b) {
        "text" => {
            let t = b.get("text").and_then(Value::as_str).unwrap_or("");
            (!t.is_empty()).then(|| json!({"type": "input_text", "text": t}))
        }
        "image" => Some(
            json!({"type": "input_image", "image_url": claude_source_url(b)?, "detail": "auto"}),
        ),
        "document" => {
            if b.pointer("/source/type").and_then(Value::as_str) == Some("text") {
                Some(
                    json!({"type": "input_text", "text": b.pointer("/source/data").cloned().unwrap_or(json!(""))}),
                )
            } else {
                let url = claude_source_url(b)?;
                if url.starts_with("data:") {
                    Some(
                        json!({"type": "input_file", "file_data": url, "filename": "document.pdf"}),
                    )
                } else {
                    Some(json!({"type": "input_file", "file_url": url}))
                }
            }
        }
        _ => None,
    })
}

/// A Claude Messages request as a Responses request: `system` → `instructions`, stateless
/// (`store: false`), reasoning as `reasoning.effort` with `summary: "auto"` and encrypted
/// reasoning requested, `max_tokens` → `max_output_tokens` (at least 16).
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
    let sys = claude_text(obj.get("system"));
    if !sys.is_empty() {
        out.insert("instructions".into(), json!(sys));
    }
    let mut input = Vec::new();
    for m in msgs {
        match m.get("role").and_then(Value::as_str).unwrap_or("") {
            "system" => {
                let t = claude_text(m.get("content"));
                if !t.is_empty() {
                    input.push(json!({"type": "message", "role": "developer", "content": [{"type": "input_text", "text": t}]}));
                }
            }
            "user" => {
                let mut parts = Vec::new();
                for b in claude_blocks(m.get("content")) {
                    if block_type(&b) == "tool_result" {
                        let call_id = b.get("tool_use_id").cloned().unwrap_or(Value::Null);
                        let inner = claude_blocks(b.get("content"));
                        let only_text = inner.iter().all(|x| block_type(x) == "text");
                        let mut output = if only_text {
                            json!(
                                inner
                                    .iter()
                                    .filter_map(|x| x.get("text").and_then(Value::as_str))
                                    .collect::<String>()
                            )
                        } else {
                            let mut v = Vec::new();
                            for x in &inner {
                                if let Some(p) = user_parts(x)? {
                                    v.push(p);
                                }
                            }
                            Value::Array(v)
                        };
                        if b.get("is_error").and_then(Value::as_bool) == Some(true)
                            && let Some(s) = output.as_str()
                        {
                            output = json!(format!("Error: {s}"));
                        }
                        input.push(json!({"type": "function_call_output", "call_id": call_id, "output": output}));
                    } else if let Some(p) = user_parts(&b)? {
                        parts.push(p);
                    }
                }
                if !parts.is_empty() {
                    input.push(json!({"type": "message", "role": "user", "content": parts}));
                }
            }
            "assistant" => {
                let mut text: Vec<Value> = Vec::new();
                let flush = |text: &mut Vec<Value>, input: &mut Vec<Value>| {
                    if !text.is_empty() {
                        input.push(json!({"type": "message", "role": "assistant", "content": std::mem::take(text)}));
                    }
                };
                for b in claude_blocks(m.get("content")) {
                    match block_type(&b) {
                        "text" => {
                            let t = b.get("text").and_then(Value::as_str).unwrap_or("");
                            if !t.is_empty() {
                                text.push(json!({"type": "output_text", "text": t}));
                            }
                        }
                        "tool_use" => {
                            flush(&mut text, &mut input);
                            input.push(json!({"type": "function_call", "call_id": b.get("id").cloned().unwrap_or(Value::Null),
                                "name": b.get("name").cloned().unwrap_or(Value::Null),
                                "arguments": b.get("input").cloned().unwrap_or_else(|| json!({})).to_string()}));
                        }
                        "thinking" => {
                            // Replayable only when it came from OpenAI (cch envelope).
                            let sig = b.get("signature").and_then(Value::as_str).unwrap_or("");
                            if let Some(p) = open_envelope(ENVELOPE_OPENAI, sig) {
                                flush(&mut text, &mut input);
                                let summary = b
                                    .get("thinking")
                                    .and_then(Value::as_str)
                                    .filter(|t| !t.is_empty())
                                    .map(|t| vec![json!({"type": "summary_text", "text": t})])
                                    .unwrap_or_default();
                                input.push(json!({"type": "reasoning", "id": p.get("id").cloned().unwrap_or(Value::Null),
                                    "summary": summary, "encrypted_content": p.get("encrypted_content").cloned().unwrap_or(Value::Null)}));
                            }
                        }
                        _ => {}
                    }
                }
                flush(&mut text, &mut input);
            }
            other => return Err(invalid("claude", format!("unknown role {other:?}"))),
        }
    }
    if let Some(last) = input.last()
        && last.get("role").and_then(Value::as_str) == Some("assistant")
    {
        return Err(unsupported("assistant prefill"));
    }
    out.insert("input".into(), Value::Array(input));
    if obj
        .get("stop_sequences")
        .and_then(Value::as_array)
        .is_some_and(|s| !s.is_empty())
    {
        return Err(unsupported(
            "stop_sequences (the Responses API has no stop strings)",
        ));
    }
    if let Some(n) = obj.get("max_tokens").and_then(Value::as_u64) {
        out.insert("max_output_tokens".into(), json!(n.max(16)));
    }
    for k in ["temperature", "top_p"] {
        if let Some(v) = obj.get(k).filter(|v| v.is_number()) {
            out.insert(k.into(), v.clone());
        }
    }
    let tools = super::super::openai_chat::tools_from_claude(obj.get("tools"), false);
    if !tools.is_empty() {
        out.insert("tools".into(), Value::Array(tools));
        if let Some(tc) = obj.get("tool_choice") {
            let r = match tc.get("type").and_then(Value::as_str) {
                Some("any") => json!("required"),
                Some("none") => json!("none"),
                Some("tool") => {
                    json!({"type": "function", "name": tc.get("name").cloned().unwrap_or(Value::Null)})
                }
                _ => json!("auto"),
            };
            out.insert("tool_choice".into(), r);
            if tc.get("disable_parallel_tool_use").and_then(Value::as_bool) == Some(true) {
                out.insert("parallel_tool_calls".into(), json!(false));
            }
        }
    }
    if let Some(e) = effort_from_claude(req) {
        out.insert("reasoning".into(), json!({"effort": e, "summary": "auto"}));
        out.insert("include".into(), json!(["reasoning.encrypted_content"]));
    }
    out.insert("store".into(), json!(false));
    if let Some(s) = obj.get("stream").and_then(Value::as_bool) {
        out.insert("stream".into(), json!(s));
    }
    if let Some(schema) = req
        .pointer("/output_config/format")
        .filter(|f| f.get("type").and_then(Value::as_str) == Some("json_schema"))
        .and_then(|f| f.get("schema"))
    {
        out.insert("text".into(), json!({"format": {"type": "json_schema", "name": "output", "schema": schema, "strict": false}}));
    }
    identity_from_claude(req, &mut out);
    Ok(Value::Object(out))
}
