//! Requests: Gemini `GenerateContentRequest` → Claude Messages request.

use serde_json::{Map, Value, json};

use super::super::ConvertError;
use super::schema::to_json_schema;
use super::{
    ANTHROPIC_REDACTED_PREFIX, ANTHROPIC_SIGNATURE_PREFIX, DEFAULT_MAX_TOKENS, SYNTHETIC_ID_PREFIX,
    claude_id_from_gemini, invalid, unsupported, unwrap_envelope,
};

/// Media types Claude accepts for base64 images.
const CLAUDE_IMAGE_TYPES: &[&str] = &["image/jpeg", "image/png", "image/gif", "image/webp"];

/// A Gemini client request (`generateContent` body, or the Code Assist `{"request": …}`
/// envelope) as a Claude Messages request.
///
/// The body has no model (Gemini puts it in the URL): the caller inserts `"model"` (see
/// [`request_to_claude_with_model`]) and `"stream": true` for `streamGenerateContent`.
/// `max_tokens` is `maxOutputTokens` or [`super::DEFAULT_MAX_TOKENS`]. Hosted tools
/// (`googleSearch`, `codeExecution`, …) and `safetySettings` are dropped; `candidateCount > 1`,
/// logprobs, non-text output modalities, `cachedContent` and code-execution parts are
/// [`ConvertError::Unsupported`].
pub fn request_to_claude(body: &Value) -> Result<Value, ConvertError> {
    // Both proto3 JSON spellings are accepted: everything below reads lowerCamelCase.
    let body = super::spelling::to_lower_camel(body);
    let g = unwrap_envelope(&body, "request", "contents");
    let obj = g
        .as_object()
        .ok_or_else(|| invalid("request body must be a JSON object"))?;
    if obj.get("cachedContent").is_some_and(|c| !c.is_null()) {
        return Err(unsupported("cachedContent"));
    }
    let mut out = Map::new();
    let mut system: Vec<Value> = Vec::new();
    if let Some(si) = obj.get("systemInstruction").filter(|v| !v.is_null()) {
        system.extend(system_texts(si)?);
    }

    let contents = obj
        .get("contents")
        .and_then(Value::as_array)
        .ok_or_else(|| invalid("`contents` must be an array"))?;
    let mut conv = ToClaude::default();
    for (i, c) in contents.iter().enumerate() {
        conv.content(i, c, &mut system)?;
    }
    let messages = conv.finish();
    if messages.is_empty() {
        return Err(invalid("`contents` holds no message with content"));
    }

    let gen_cfg = obj.get("generationConfig").filter(|v| !v.is_null());
    let (max_tokens, thinking, effort) = generation_config(gen_cfg, &mut out)?;

    if !system.is_empty() {
        out.insert("system".into(), Value::Array(system));
    }
    out.insert("messages".into(), Value::Array(messages));

    let tools = tools_to_claude(obj.get("tools"))?;
    let mut forced = false;
    if !tools.is_empty() {
        if let Some(choice) = tool_choice_to_claude(obj.get("toolConfig"))? {
            forced = matches!(
                choice.get("type").and_then(Value::as_str),
                Some("any") | Some("tool")
            );
            out.insert("tool_choice".into(), choice);
        }
        out.insert("tools".into(), Value::Array(tools));
    }
    out.insert("max_tokens".into(), json!(max_tokens));
    // Thinking is incompatible with a forced tool choice: keep the choice (meaning), drop the
    // thinking hint. With thinking on, Claude rejects custom sampling.
    if let Some(t) = thinking.filter(|_| !forced) {
        out.insert("thinking".into(), t);
        if let Some(e) = effort {
            out.insert(
                "output_config".into(),
                merge_effort(out.get("output_config"), e),
            );
        }
        out.remove("temperature");
        out.remove("top_p");
        out.remove("top_k");
    }
    Ok(Value::Object(out))
}

/// [`request_to_claude`] with the model (from the URL) inserted as `"model"`.
pub fn request_to_claude_with_model(body: &Value, model: &str) -> Result<Value, ConvertError> {
    let mut v = request_to_claude(body)?;
    if let Some(o) = v.as_object_mut() {
        o.insert("model".into(), json!(model));
    }
    Ok(v)
}

fn merge_effort(existing: Option<&Value>, effort: &str) -> Value {
    let mut m = existing
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    m.insert("effort".into(), json!(effort));
    Value::Object(m)
}

fn system_texts(si: &Value) -> Result<Vec<Value>, ConvertError> {
    if let Some(s) = si.as_str() {
        return Ok(text_block(s).into_iter().collect());
    }
    let parts = si
        .get("parts")
        .and_then(Value::as_array)
        .ok_or_else(|| invalid("`systemInstruction.parts` must be an array"))?;
    let mut out = Vec::new();
    for p in parts {
        match p.get("text") {
            Some(Value::String(t)) => out.extend(text_block(t)),
            _ if p.is_object() => return Err(unsupported("non-text systemInstruction parts")),
            _ => return Err(invalid("systemInstruction part must be an object")),
        }
    }
    Ok(out)
}

fn text_block(t: &str) -> Option<Value> {
    (!t.trim().is_empty()).then(|| json!({"type": "text", "text": t}))
}

/// Gemini contents → Claude messages, with tool-call id bookkeeping.
#[derive(Default)]
struct ToClaude {
    messages: Vec<(String, Vec<Value>)>,
    /// Every call so far: (Claude id, name, answered).
    calls: Vec<(String, String, bool)>,
    /// Text of the current run of unsigned thought parts.
    thought_buf: String,
}

impl ToClaude {
    fn content(
        &mut self,
        i: usize,
        c: &Value,
        system: &mut Vec<Value>,
    ) -> Result<(), ConvertError> {
        if !c.is_object() {
            return Err(invalid(format!("contents[{i}] must be an object")));
        }
        let role = match c.get("role").and_then(Value::as_str) {
            None | Some("user") | Some("function") | Some("tool") => "user",
            Some("model") | Some("assistant") => "assistant",
            Some("system") => {
                // Some clients put system turns in `contents`; fold them into `system`.
                system.extend(system_texts(c)?);
                return Ok(());
            }
            Some(r) => return Err(invalid(format!("contents[{i}].role `{r}` is unknown"))),
        };
        let parts = match c.get("parts") {
            None | Some(Value::Null) => return Ok(()),
            Some(Value::Array(p)) => p,
            Some(_) => return Err(invalid(format!("contents[{i}].parts must be an array"))),
        };
        let mut blocks = Vec::new();
        self.thought_buf.clear();
        for (j, p) in parts.iter().enumerate() {
            if let Some(b) = self.part(i, j, role, p)? {
                blocks.push(b);
            }
        }
        if blocks.is_empty() {
            return Ok(());
        }
        match self.messages.last_mut() {
            Some((r, prev)) if r == role => prev.extend(blocks),
            _ => self.messages.push((role.to_string(), blocks)),
        }
        Ok(())
    }

    fn part(
        &mut self,
        i: usize,
        j: usize,
        role: &str,
        p: &Value,
    ) -> Result<Option<Value>, ConvertError> {
        let at = format!("contents[{i}].parts[{j}]");
        let Some(o) = p.as_object() else {
            return Err(invalid(format!("{at} must be an object")));
        };
        if o.get("thought").and_then(Value::as_bool) == Some(true) {
            // Thought summaries are only replayed when they wrap a Claude signature; the text
            // of a thought run (possibly split over parts) is collected up to the signed part.
            if role != "assistant" {
                return Ok(None);
            }
            let sig = o
                .get("thoughtSignature")
                .and_then(Value::as_str)
                .unwrap_or("");
            let text = o.get("text").and_then(Value::as_str).unwrap_or("");
            self.thought_buf.push_str(text);
            if let Some(s) = sig.strip_prefix(ANTHROPIC_SIGNATURE_PREFIX) {
                let thinking = std::mem::take(&mut self.thought_buf);
                return Ok(Some(
                    json!({"type": "thinking", "thinking": thinking, "signature": s}),
                ));
            }
            if let Some(d) = sig.strip_prefix(ANTHROPIC_REDACTED_PREFIX) {
                self.thought_buf.clear();
                return Ok(Some(json!({"type": "redacted_thinking", "data": d})));
            }
            return Ok(None);
        }
        self.thought_buf.clear();
        if let Some(t) = o.get("text") {
            let t = t
                .as_str()
                .ok_or_else(|| invalid(format!("{at}.text must be a string")))?;
            return Ok(text_block(t));
        }
        if let Some(d) = o.get("inlineData") {
            return inline_to_claude(d, &at).map(Some);
        }
        if let Some(d) = o.get("fileData") {
            return file_to_claude(d, &at).map(Some);
        }
        if let Some(fc) = o.get("functionCall") {
            if role != "assistant" {
                return Err(invalid(format!("{at}: functionCall in a user turn")));
            }
            let name = fc
                .get("name")
                .and_then(Value::as_str)
                .filter(|n| !n.is_empty())
                .ok_or_else(|| invalid(format!("{at}.functionCall.name missing")))?;
            let args = match fc.get("args") {
                None | Some(Value::Null) => json!({}),
                Some(a @ Value::Object(_)) => a.clone(),
                Some(_) => {
                    return Err(invalid(format!("{at}.functionCall.args must be an object")));
                }
            };
            let id = match fc
                .get("id")
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty())
            {
                Some(id) => claude_id_from_gemini(id),
                None => format!("{SYNTHETIC_ID_PREFIX}{}", self.calls.len()),
            };
            self.calls.push((id.clone(), name.to_string(), false));
            return Ok(Some(
                json!({"type": "tool_use", "id": id, "name": name, "input": args}),
            ));
        }
        if let Some(fr) = o.get("functionResponse") {
            if role != "user" {
                return Err(invalid(format!("{at}: functionResponse in a model turn")));
            }
            return self.function_response(fr, &at).map(Some);
        }
        if o.contains_key("executableCode") || o.contains_key("codeExecutionResult") {
            return Err(unsupported("code execution parts (executableCode)"));
        }
        // Metadata-only parts (e.g. a bare thoughtSignature, videoMetadata): nothing to carry.
        Ok(None)
    }

    fn function_response(&mut self, fr: &Value, at: &str) -> Result<Value, ConvertError> {
        let name = fr.get("name").and_then(Value::as_str).unwrap_or("");
        let id = fr
            .get("id")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty());
        let slot = match id {
            Some(id) => {
                let cid = claude_id_from_gemini(id);
                self.calls
                    .iter_mut()
                    .find(|(c, _, done)| *c == cid && !*done)
            }
            None => self
                .calls
                .iter_mut()
                .find(|(_, n, done)| n == name && !*done),
        };
        let Some(slot) = slot else {
            return Err(invalid(format!(
                "{at}: functionResponse `{name}` matches no earlier unanswered functionCall"
            )));
        };
        slot.2 = true;
        let tool_use_id = slot.0.clone();
        let resp = fr.get("response").unwrap_or(&Value::Null);
        let (text, is_error) = response_text(resp);
        let mut images = Vec::new();
        if let Some(parts) = fr.get("parts").and_then(Value::as_array) {
            for (k, p) in parts.iter().enumerate() {
                let pat = format!("{at}.functionResponse.parts[{k}]");
                if let Some(d) = p.get("inlineData") {
                    images.push(inline_to_claude(d, &pat)?);
                } else if let Some(d) = p.get("fileData") {
                    images.push(file_to_claude(d, &pat)?);
                }
            }
        }
        let mut block = json!({"type": "tool_result", "tool_use_id": tool_use_id});
        if images.is_empty() {
            block["content"] = json!(text);
        } else {
            let mut content: Vec<Value> = text_block(&text).into_iter().collect();
            content.extend(images);
            block["content"] = Value::Array(content);
        }
        if is_error {
            block["is_error"] = json!(true);
        }
        Ok(block)
    }

    fn finish(self) -> Vec<Value> {
        self.messages
            .into_iter()
            .map(|(role, mut blocks)| {
                if role == "user" {
                    // Claude wants tool results first in a user turn.
                    blocks.sort_by_key(|b| {
                        b.get("type").and_then(Value::as_str) != Some("tool_result")
                    });
                }
                json!({"role": role, "content": blocks})
            })
            .collect()
    }
}

/// A `functionResponse.response` object as tool-result text and error flag.
fn response_text(resp: &Value) -> (String, bool) {
    let as_text = |v: &Value| match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    match resp.as_object() {
        Some(o) if o.len() == 1 && o.contains_key("output") => {
            (o.get("output").map(as_text).unwrap_or_default(), false)
        }
        Some(o) if o.contains_key("error") && !o.contains_key("output") => {
            (o.get("error").map(as_text).unwrap_or_default(), true)
        }
        Some(o) if o.is_empty() => (String::new(), false),
        None if resp.is_null() => (String::new(), false),
        _ => (resp.to_string(), false),
    }
}

fn inline_to_claude(d: &Value, at: &str) -> Result<Value, ConvertError> {
    let mime = d.get("mimeType").and_then(Value::as_str).unwrap_or("");
    let data = d
        .get("data")
        .and_then(Value::as_str)
        .ok_or_else(|| invalid(format!("{at}.inlineData.data must be a string")))?;
    let mime_l = mime.to_ascii_lowercase();
    if CLAUDE_IMAGE_TYPES.contains(&mime_l.as_str()) {
        Ok(
            json!({"type": "image", "source": {"type": "base64", "media_type": mime_l, "data": data}}),
        )
    } else if mime_l == "application/pdf" {
        Ok(
            json!({"type": "document", "source": {"type": "base64", "media_type": mime_l, "data": data}}),
        )
    } else {
        Err(unsupported(format!("inlineData of type `{mime}`")))
    }
}

fn file_to_claude(d: &Value, at: &str) -> Result<Value, ConvertError> {
    let uri = d
        .get("fileUri")
        .and_then(Value::as_str)
        .ok_or_else(|| invalid(format!("{at}.fileData.fileUri must be a string")))?;
    let mime = d
        .get("mimeType")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_ascii_lowercase();
    let is_http = uri.starts_with("https://") || uri.starts_with("http://");
    if !is_http || uri.starts_with("https://generativelanguage.googleapis.com/") {
        return Err(unsupported(
            "fileData references to Gemini files or gs:// URIs (not portable across providers)",
        ));
    }
    if mime == "application/pdf" {
        Ok(json!({"type": "document", "source": {"type": "url", "url": uri}}))
    } else if mime.is_empty() || mime.starts_with("image/") {
        Ok(json!({"type": "image", "source": {"type": "url", "url": uri}}))
    } else {
        Err(unsupported(format!("fileData of type `{mime}`")))
    }
}

/// Reads `generationConfig` into `out`; returns `(max_tokens, thinking, effort)`.
fn generation_config(
    cfg: Option<&Value>,
    out: &mut Map<String, Value>,
) -> Result<(u64, Option<Value>, Option<&'static str>), ConvertError> {
    let Some(cfg) = cfg else {
        return Ok((DEFAULT_MAX_TOKENS, None, None));
    };
    if !cfg.is_object() {
        return Err(invalid("`generationConfig` must be an object"));
    }
    if cfg
        .get("candidateCount")
        .and_then(Value::as_u64)
        .unwrap_or(1)
        > 1
    {
        return Err(unsupported("candidateCount > 1"));
    }
    if cfg.get("responseLogprobs").and_then(Value::as_bool) == Some(true)
        || cfg.get("logprobs").is_some_and(|v| !v.is_null())
    {
        return Err(unsupported("logprobs"));
    }
    if let Some(mods) = cfg.get("responseModalities").and_then(Value::as_array)
        && let Some(m) = mods
            .iter()
            .filter_map(Value::as_str)
            .find(|m| !m.eq_ignore_ascii_case("TEXT"))
    {
        return Err(unsupported(format!("responseModalities {m}")));
    }
    if cfg.get("speechConfig").is_some_and(|v| !v.is_null()) {
        return Err(unsupported("speechConfig (audio output)"));
    }
    match cfg.get("responseMimeType").and_then(Value::as_str) {
        None | Some("text/plain") => {}
        Some("application/json") => {
            let schema = if let Some(s) = cfg.get("responseJsonSchema").filter(|s| s.is_object()) {
                s.clone()
            } else if let Some(s) = cfg.get("responseSchema").filter(|s| s.is_object()) {
                to_json_schema(s)
            } else {
                return Err(unsupported(
                    "responseMimeType application/json without a schema",
                ));
            };
            out.insert(
                "output_config".into(),
                json!({"format": {"type": "json_schema", "schema": schema}}),
            );
        }
        Some(m) => return Err(unsupported(format!("responseMimeType {m}"))),
    }
    let max_tokens = cfg
        .get("maxOutputTokens")
        .and_then(Value::as_u64)
        .filter(|n| *n > 0)
        .unwrap_or(DEFAULT_MAX_TOKENS);
    if let Some(t) = cfg.get("temperature").and_then(Value::as_f64) {
        out.insert("temperature".into(), json!(t.clamp(0.0, 1.0)));
    } else if let Some(p) = cfg.get("topP").and_then(Value::as_f64) {
        // Newer Claude models reject temperature together with top_p: keep temperature only.
        out.insert("top_p".into(), json!(p));
    }
    if let Some(k) = cfg.get("topK").and_then(Value::as_u64) {
        out.insert("top_k".into(), json!(k));
    }
    if let Some(stops) = cfg.get("stopSequences").and_then(Value::as_array) {
        let s: Vec<Value> = stops.iter().filter(|s| s.is_string()).cloned().collect();
        if !s.is_empty() {
            out.insert("stop_sequences".into(), Value::Array(s));
        }
    }
    let (thinking, effort) = thinking_to_claude(cfg.get("thinkingConfig"), max_tokens);
    Ok((max_tokens, thinking, effort))
}

/// `thinkingConfig` → Claude `thinking` (+ effort): budget 0 = off, −1 or a level = adaptive,
/// a positive budget = enabled with `budget_tokens` raised to 1024 and kept below `max_tokens`
/// (dropped when `max_tokens` ≤ 1024).
fn thinking_to_claude(
    tc: Option<&Value>,
    max_tokens: u64,
) -> (Option<Value>, Option<&'static str>) {
    let Some(tc) = tc.filter(|v| v.is_object()) else {
        return (None, None);
    };
    if let Some(level) = tc.get("thinkingLevel").and_then(Value::as_str) {
        let effort = match level.to_ascii_uppercase().as_str() {
            "MINIMAL" | "LOW" => "low",
            "MEDIUM" => "medium",
            _ => "high",
        };
        return (Some(json!({"type": "adaptive"})), Some(effort));
    }
    match tc.get("thinkingBudget").and_then(Value::as_i64) {
        Some(0) => (None, None),
        Some(b) if b > 0 => {
            if max_tokens <= 1024 {
                return (None, None);
            }
            let budget = (b as u64).max(1024).min(max_tokens - 1);
            (
                Some(json!({"type": "enabled", "budget_tokens": budget})),
                None,
            )
        }
        Some(_) => (Some(json!({"type": "adaptive"})), None),
        None if tc.get("includeThoughts").and_then(Value::as_bool) == Some(true) => {
            (Some(json!({"type": "adaptive"})), None)
        }
        None => (None, None),
    }
}

fn tools_to_claude(tools: Option<&Value>) -> Result<Vec<Value>, ConvertError> {
    let Some(tools) = tools.filter(|t| !t.is_null()) else {
        return Ok(Vec::new());
    };
    let list = tools
        .as_array()
        .ok_or_else(|| invalid("`tools` must be an array"))?;
    let mut out = Vec::new();
    for t in list {
        // Hosted tools (googleSearch, codeExecution, urlContext, …) have no Claude
        // equivalent and are dropped.
        let Some(decls) = t
            .get("functionDeclarations")
            .or_else(|| t.get("function_declarations"))
        else {
            continue;
        };
        let decls = decls
            .as_array()
            .ok_or_else(|| invalid("`functionDeclarations` must be an array"))?;
        for d in decls {
            let name = d
                .get("name")
                .and_then(Value::as_str)
                .filter(|n| !n.is_empty())
                .ok_or_else(|| invalid("function declaration without name"))?;
            let mut schema =
                if let Some(s) = d.get("parametersJsonSchema").filter(|s| s.is_object()) {
                    s.clone()
                } else if let Some(s) = d.get("parameters").filter(|s| s.is_object()) {
                    to_json_schema(s)
                } else {
                    json!({"type": "object", "properties": {}})
                };
            if let Some(o) = schema.as_object_mut() {
                o.entry("type").or_insert_with(|| json!("object"));
            }
            let mut tool = json!({"name": name, "input_schema": schema});
            if let Some(desc) = d.get("description").and_then(Value::as_str) {
                tool["description"] = json!(desc);
            }
            out.push(tool);
        }
    }
    Ok(out)
}

fn tool_choice_to_claude(cfg: Option<&Value>) -> Result<Option<Value>, ConvertError> {
    let Some(fcc) = cfg.and_then(|c| c.get("functionCallingConfig")) else {
        return Ok(None);
    };
    let mode = fcc.get("mode").and_then(Value::as_str).unwrap_or("AUTO");
    let names: Vec<&str> = fcc
        .get("allowedFunctionNames")
        .and_then(Value::as_array)
        .map(|l| l.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    Ok(Some(match mode.to_ascii_uppercase().as_str() {
        "NONE" => json!({"type": "none"}),
        "ANY" => match names.as_slice() {
            [] => json!({"type": "any"}),
            [one] => json!({"type": "tool", "name": one}),
            _ => return Err(unsupported("allowedFunctionNames with more than one name")),
        },
        "VALIDATED" if !names.is_empty() => {
            return Err(unsupported("allowedFunctionNames with mode VALIDATED"));
        }
        _ => json!({"type": "auto"}),
    }))
}
