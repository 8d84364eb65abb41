//! Requests: Claude Messages request → Gemini `GenerateContentRequest`.

use serde_json::{Map, Value, json};

use super::super::ConvertError;
use super::schema::sanitize_schema;
use super::{
    DUMMY_THOUGHT_SIGNATURE, GEMINI_SIGNATURE_PREFIX, gemini_id_from_claude, invalid, unsupported,
};

/// A Claude Messages request as a Gemini `generateContent` body, without model (the caller
/// puts it in the URL) and without `stream` (the caller picks `:streamGenerateContent`).
///
/// `system` and any `role: "system"` messages become `systemInstruction`; tool results are
/// matched to their calls by id to recover the function name; thinking blocks are dropped
/// unless they carry a Gemini signature envelope; `metadata`, `cache_control`, server tools
/// and `disable_parallel_tool_use` are dropped. A trailing assistant message (prefill), image
/// `file` sources and orphan tool results are errors.
pub fn request_from_claude(body: &Value) -> Result<Value, ConvertError> {
    let obj = body
        .as_object()
        .ok_or_else(|| invalid("request body must be a JSON object"))?;
    let messages = obj
        .get("messages")
        .and_then(Value::as_array)
        .ok_or_else(|| invalid("`messages` must be an array"))?;
    let mut system_parts: Vec<Value> = Vec::new();
    match obj.get("system") {
        None | Some(Value::Null) => {}
        Some(s) => system_parts.extend(claude_system_parts(s)?),
    }
    // Tool-use id → function name, for the results.
    let mut names: Vec<(String, String)> = Vec::new();
    for m in messages {
        if let Some(blocks) = m.get("content").and_then(Value::as_array) {
            for b in blocks {
                if b.get("type").and_then(Value::as_str) == Some("tool_use")
                    && let (Some(id), Some(n)) = (
                        b.get("id").and_then(Value::as_str),
                        b.get("name").and_then(Value::as_str),
                    )
                {
                    names.push((id.to_string(), n.to_string()));
                }
            }
        }
    }
    let mut contents: Vec<Value> = Vec::new();
    let mut last_role = "";
    for (i, m) in messages.iter().enumerate() {
        let role = match m.get("role").and_then(Value::as_str) {
            Some("user") => "user",
            Some("assistant") => "model",
            Some("system") => {
                system_parts.extend(claude_system_parts(
                    m.get("content").unwrap_or(&Value::Null),
                )?);
                continue;
            }
            _ => {
                return Err(invalid(format!(
                    "messages[{i}].role must be user or assistant"
                )));
            }
        };
        let parts = message_parts(i, role, m.get("content"), &names)?;
        if parts.is_empty() {
            continue;
        }
        last_role = role;
        match contents.last_mut() {
            Some(prev) if prev.get("role").and_then(Value::as_str) == Some(role) => {
                if let Some(p) = prev.get_mut("parts").and_then(Value::as_array_mut) {
                    p.extend(parts);
                }
            }
            _ => contents.push(json!({"role": role, "parts": parts})),
        }
    }
    if contents.is_empty() {
        return Err(invalid("`messages` holds no content"));
    }
    if last_role == "model" {
        return Err(unsupported("assistant prefill (a final assistant message)"));
    }
    for c in &mut contents {
        if c.get("role").and_then(Value::as_str) == Some("model") {
            add_dummy_signature(c);
        }
    }

    let mut out = Map::new();
    out.insert("contents".into(), Value::Array(contents));
    if !system_parts.is_empty() {
        out.insert("systemInstruction".into(), json!({"parts": system_parts}));
    }
    let decls = tools_from_claude(obj.get("tools"))?;
    if !decls.is_empty() {
        out.insert("tools".into(), json!([{"functionDeclarations": decls}]));
        if let Some(tc) = tool_choice_from_claude(obj.get("tool_choice")) {
            out.insert("toolConfig".into(), json!({"functionCallingConfig": tc}));
        }
    }
    let gc = generation_config_from_claude(obj);
    if !gc.is_empty() {
        out.insert("generationConfig".into(), Value::Object(gc));
    }
    Ok(Value::Object(out))
}

fn claude_system_parts(s: &Value) -> Result<Vec<Value>, ConvertError> {
    match s {
        Value::String(t) if t.is_empty() => Ok(Vec::new()),
        Value::String(t) => Ok(vec![json!({"text": t})]),
        Value::Array(blocks) => {
            let mut out = Vec::new();
            for b in blocks {
                match b.get("text").and_then(Value::as_str) {
                    Some(t) if !t.is_empty() => out.push(json!({"text": t})),
                    Some(_) => {}
                    None => return Err(invalid("system blocks must be text blocks")),
                }
            }
            Ok(out)
        }
        Value::Null => Ok(Vec::new()),
        _ => Err(invalid(
            "`system` must be a string or an array of text blocks",
        )),
    }
}

/// Gives the first `functionCall` of a model turn the dummy signature when no call in the turn
/// has one (Gemini 3 rejects unsigned calls; foreign history gets the documented dummy).
fn add_dummy_signature(content: &mut Value) {
    let Some(parts) = content.get_mut("parts").and_then(Value::as_array_mut) else {
        return;
    };
    let calls = || parts.iter().filter(|p| p.get("functionCall").is_some());
    if calls().next().is_none() || calls().any(|p| p.get("thoughtSignature").is_some()) {
        return;
    }
    if let Some(first) = parts.iter_mut().find(|p| p.get("functionCall").is_some()) {
        first["thoughtSignature"] = json!(DUMMY_THOUGHT_SIGNATURE);
    }
}

fn message_parts(
    i: usize,
    role: &str,
    content: Option<&Value>,
    names: &[(String, String)],
) -> Result<Vec<Value>, ConvertError> {
    let blocks = match content {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(Value::String(s)) if s.is_empty() => return Ok(Vec::new()),
        Some(Value::String(s)) => return Ok(vec![json!({"text": s})]),
        Some(Value::Array(b)) => b,
        Some(_) => {
            return Err(invalid(format!(
                "messages[{i}].content must be a string or array"
            )));
        }
    };
    let mut responses = Vec::new();
    let mut others = Vec::new();
    let mut pending_sig: Option<String> = None;
    for (j, b) in blocks.iter().enumerate() {
        let at = format!("messages[{i}].content[{j}]");
        let ty = b
            .get("type")
            .and_then(Value::as_str)
            .ok_or_else(|| invalid(format!("{at} has no type")))?;
        let mut part = match ty {
            "text" => match b.get("text").and_then(Value::as_str) {
                Some(t) if !t.is_empty() => json!({"text": t}),
                _ => continue,
            },
            "image" | "document" => source_to_gemini(b.get("source"), ty, &at)?,
            "tool_use" => {
                if role != "model" {
                    return Err(invalid(format!("{at}: tool_use in a user message")));
                }
                let name = b
                    .get("name")
                    .and_then(Value::as_str)
                    .ok_or_else(|| invalid(format!("{at}.name missing")))?;
                let args = match b.get("input") {
                    Some(a @ Value::Object(_)) => a.clone(),
                    _ => json!({}),
                };
                let mut fc = json!({"name": name, "args": args});
                if let Some(id) = b
                    .get("id")
                    .and_then(Value::as_str)
                    .and_then(gemini_id_from_claude)
                {
                    fc["id"] = json!(id);
                }
                json!({"functionCall": fc})
            }
            "tool_result" => {
                let id = b
                    .get("tool_use_id")
                    .and_then(Value::as_str)
                    .ok_or_else(|| invalid(format!("{at}.tool_use_id missing")))?;
                let name = names
                    .iter()
                    .find(|(i, _)| i == id)
                    .map(|(_, n)| n.clone())
                    .ok_or_else(|| {
                        invalid(format!("{at}: tool_result `{id}` matches no tool_use"))
                    })?;
                let (text, images) = tool_result_content(b.get("content"), &at)?;
                let is_error = b.get("is_error").and_then(Value::as_bool) == Some(true);
                let key = if is_error { "error" } else { "output" };
                let mut fr = json!({"name": name, "response": {key: text}});
                if let Some(gid) = gemini_id_from_claude(id) {
                    fr["id"] = json!(gid);
                }
                responses.push(json!({"functionResponse": fr}));
                others.extend(images);
                continue;
            }
            "thinking" => {
                if let Some(s) = b
                    .get("signature")
                    .and_then(Value::as_str)
                    .and_then(|s| s.strip_prefix(GEMINI_SIGNATURE_PREFIX))
                {
                    pending_sig = Some(s.to_string());
                }
                continue;
            }
            // Claude-only blocks (redacted thinking, server tools, …) are dropped.
            _ => continue,
        };
        if let Some(sig) = pending_sig.take()
            && let Some(o) = part.as_object_mut()
        {
            o.insert("thoughtSignature".into(), json!(sig));
        }
        others.push(part);
    }
    responses.extend(others);
    Ok(responses)
}

fn source_to_gemini(source: Option<&Value>, ty: &str, at: &str) -> Result<Value, ConvertError> {
    let src = source.ok_or_else(|| invalid(format!("{at}.source missing")))?;
    match src.get("type").and_then(Value::as_str) {
        Some("base64") => {
            let mime = src.get("media_type").and_then(Value::as_str).unwrap_or("");
            let data = src
                .get("data")
                .and_then(Value::as_str)
                .ok_or_else(|| invalid(format!("{at}.source.data missing")))?;
            Ok(json!({"inlineData": {"mimeType": mime, "data": data}}))
        }
        Some("url") => {
            let url = src
                .get("url")
                .and_then(Value::as_str)
                .ok_or_else(|| invalid(format!("{at}.source.url missing")))?;
            let mut fd = json!({"fileUri": url});
            let mime = if ty == "document" {
                Some("application/pdf")
            } else {
                mime_from_url(url)
            };
            if let Some(m) = mime {
                fd["mimeType"] = json!(m);
            }
            Ok(json!({"fileData": fd}))
        }
        Some("text") if ty == "document" => {
            let t = src.get("data").and_then(Value::as_str).unwrap_or("");
            Ok(json!({"text": t}))
        }
        Some("file") => Err(unsupported(
            "file_id references (not portable across providers)",
        )),
        Some(other) => Err(unsupported(format!("{ty} source `{other}`"))),
        None => Err(invalid(format!("{at}.source.type missing"))),
    }
}

fn mime_from_url(url: &str) -> Option<&'static str> {
    let path = url
        .split(['?', '#'])
        .next()
        .unwrap_or(url)
        .to_ascii_lowercase();
    let ext = path.rsplit('.').next().unwrap_or("");
    match ext {
        "png" => Some("image/png"),
        "jpg" | "jpeg" => Some("image/jpeg"),
        "gif" => Some("image/gif"),
        "webp" => Some("image/webp"),
        "pdf" => Some("application/pdf"),
        _ => None,
    }
}

/// A `tool_result.content` as the result text and the image parts that follow the responses.
fn tool_result_content(c: Option<&Value>, at: &str) -> Result<(String, Vec<Value>), ConvertError> {
    match c {
        None | Some(Value::Null) => Ok((String::new(), Vec::new())),
        Some(Value::String(s)) => Ok((s.clone(), Vec::new())),
        Some(Value::Array(blocks)) => {
            let mut texts = Vec::new();
            let mut images = Vec::new();
            for (k, b) in blocks.iter().enumerate() {
                match b.get("type").and_then(Value::as_str) {
                    Some("text") => texts.push(b.get("text").and_then(Value::as_str).unwrap_or("")),
                    Some(ty @ ("image" | "document")) => images.push(source_to_gemini(
                        b.get("source"),
                        ty,
                        &format!("{at}.content[{k}]"),
                    )?),
                    _ => {}
                }
            }
            Ok((texts.join("\n"), images))
        }
        Some(_) => Err(invalid(format!("{at}.content must be a string or array"))),
    }
}

fn tools_from_claude(tools: Option<&Value>) -> Result<Vec<Value>, ConvertError> {
    let Some(list) = tools.filter(|t| !t.is_null()) else {
        return Ok(Vec::new());
    };
    let list = list
        .as_array()
        .ok_or_else(|| invalid("`tools` must be an array"))?;
    let mut out = Vec::new();
    for t in list {
        let custom = matches!(t.get("type").and_then(Value::as_str), None | Some("custom"));
        let Some(schema) = t.get("input_schema").filter(|_| custom) else {
            continue; // server tools (web_search_…, bash_…) run only on Anthropic
        };
        let name = t
            .get("name")
            .and_then(Value::as_str)
            .ok_or_else(|| invalid("tool without name"))?;
        let mut d = json!({"name": name});
        if let Some(desc) = t.get("description").and_then(Value::as_str) {
            d["description"] = json!(desc);
        }
        let params = sanitize_schema(schema);
        if params
            .get("properties")
            .and_then(Value::as_object)
            .is_some_and(|p| !p.is_empty())
        {
            d["parameters"] = params;
        }
        out.push(d);
    }
    Ok(out)
}

fn tool_choice_from_claude(tc: Option<&Value>) -> Option<Value> {
    let tc = tc?;
    Some(match tc.get("type").and_then(Value::as_str)? {
        "auto" => json!({"mode": "AUTO"}),
        "any" => json!({"mode": "ANY"}),
        "tool" => json!({"mode": "ANY", "allowedFunctionNames": [tc.get("name")?]}),
        "none" => json!({"mode": "NONE"}),
        _ => return None,
    })
}

fn generation_config_from_claude(obj: &Map<String, Value>) -> Map<String, Value> {
    let mut gc = Map::new();
    let mut copy = |from: &str, to: &str| {
        if let Some(v) = obj.get(from).filter(|v| !v.is_null()) {
            gc.insert(to.into(), v.clone());
        }
    };
    copy("max_tokens", "maxOutputTokens");
    copy("temperature", "temperature");
    copy("top_p", "topP");
    copy("top_k", "topK");
    copy("stop_sequences", "stopSequences");
    if let Some(t) = obj.get("thinking") {
        let show = t.get("display").and_then(Value::as_str) != Some("omitted");
        match t.get("type").and_then(Value::as_str) {
            Some("enabled") => {
                let budget = t
                    .get("budget_tokens")
                    .and_then(Value::as_u64)
                    .unwrap_or(1024);
                gc.insert(
                    "thinkingConfig".into(),
                    json!({"thinkingBudget": budget, "includeThoughts": show}),
                );
            }
            Some("adaptive") => {
                gc.insert(
                    "thinkingConfig".into(),
                    json!({"thinkingBudget": -1, "includeThoughts": show}),
                );
            }
            _ => {}
        }
    }
    if let Some(f) = obj
        .get("output_config")
        .and_then(|o| o.get("format"))
        .filter(|f| f.get("type").and_then(Value::as_str) == Some("json_schema"))
        && let Some(s) = f.get("schema")
    {
        gc.insert("responseMimeType".into(), json!("application/json"));
        gc.insert("responseJsonSchema".into(), s.clone());
    }
    gc
}
