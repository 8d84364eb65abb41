//! Complete answers and errors: Gemini `GenerateContentResponse` ⇄ Claude message.

use serde_json::{Value, json};

use super::super::ConvertError;
use super::{
    ANTHROPIC_REDACTED_PREFIX, ANTHROPIC_SIGNATURE_PREFIX, claude_id_from_gemini, claude_signature,
    claude_usage_json, finish_from_stop_reason, gemini_status, gemini_usage_json, invalid,
    response_call_id, stop_reason_from_finish, unwrap_envelope,
};

/// The Claude message id for a Gemini `responseId` (`msg_gemini` when there is none).
pub(super) fn message_id(response_id: &str) -> String {
    if response_id.is_empty() {
        "msg_gemini".to_string()
    } else {
        format!("msg_{}", claude_id_from_gemini(response_id))
    }
}

/// The first candidate (the one with `index` 0 when indexes are given).
pub(super) fn first_candidate(g: &Value) -> Option<&Value> {
    let list = g.get("candidates")?.as_array()?;
    list.iter()
        .find(|c| c.get("index").and_then(Value::as_u64).unwrap_or(0) == 0)
        .or_else(|| list.first())
}

/// The text of a Gemini error object, for `ConvertError` and Claude error events.
pub(super) fn error_message(err: &Value) -> String {
    err.get("message")
        .and_then(Value::as_str)
        .map(str::to_string)
        .unwrap_or_else(|| err.to_string())
}

/// Builds Claude content blocks from Gemini parts (thought runs merge into one thinking block,
/// adjacent text parts into one text block; signatures become thinking blocks before the part
/// that carried them).
struct Blocks<'a> {
    response_id: &'a str,
    blocks: Vec<Value>,
    thinking: Option<String>,
    calls: usize,
}

impl Blocks<'_> {
    fn flush_thinking(&mut self, sig: Option<&str>) {
        let text = self.thinking.take();
        if text.is_none() && sig.is_none() {
            return;
        }
        let signature = sig.map(claude_signature).unwrap_or_default();
        self.blocks.push(json!({
            "type": "thinking",
            "thinking": text.unwrap_or_default(),
            "signature": signature,
        }));
    }

    fn part(&mut self, p: &Value) -> Result<(), ConvertError> {
        let sig = p.get("thoughtSignature").and_then(Value::as_str);
        let text = p.get("text").and_then(Value::as_str);
        if p.get("thought").and_then(Value::as_bool) == Some(true) {
            self.thinking
                .get_or_insert_with(String::new)
                .push_str(text.unwrap_or(""));
            if sig.is_some() {
                self.flush_thinking(sig);
            }
            return Ok(());
        }
        self.flush_thinking(sig);
        if let Some(t) = text {
            if t.is_empty() {
                return Ok(());
            }
            if let Some(last) = self.blocks.last_mut()
                && last.get("type").and_then(Value::as_str) == Some("text")
                && let Some(Value::String(prev)) = last.get_mut("text")
            {
                prev.push_str(t);
            } else {
                self.blocks.push(json!({"type": "text", "text": t}));
            }
        } else if let Some(fc) = p.get("functionCall") {
            let (id, name, args) = function_call(fc, self.response_id, self.calls)?;
            self.calls += 1;
            self.blocks
                .push(json!({"type": "tool_use", "id": id, "name": name, "input": args}));
        }
        // Other output parts (inline images, code execution) have no Claude block: dropped.
        Ok(())
    }
}

/// `(Claude id, name, args)` of the `n`th functionCall of a response.
pub(super) fn function_call(
    fc: &Value,
    response_id: &str,
    n: usize,
) -> Result<(String, String, Value), ConvertError> {
    let name = fc
        .get("name")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .ok_or_else(|| invalid("functionCall without name"))?;
    let args = match fc.get("args") {
        None | Some(Value::Null) => json!({}),
        Some(a @ Value::Object(_)) => a.clone(),
        Some(_) => return Err(invalid("functionCall.args must be an object")),
    };
    let id = match fc
        .get("id")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
    {
        Some(id) => claude_id_from_gemini(id),
        None => response_call_id(response_id, n),
    };
    Ok((id, name.to_string(), args))
}

/// A Gemini `generateContent` answer (or Code Assist `{"response": …}`) as a Claude message.
///
/// `model` is `modelVersion` (the caller replaces it with the model the client asked for).
/// A prompt blocked by `promptFeedback` gives empty content and `stop_reason: "refusal"`;
/// a malformed function call with no content, or an `{"error": …}` body, is
/// [`ConvertError::Invalid`] (an upstream failure, eligible for failover).
pub fn response_to_claude(body: &Value) -> Result<Value, ConvertError> {
    let g = unwrap_envelope(body, "response", "candidates");
    if !g.is_object() {
        return Err(invalid("response must be a JSON object"));
    }
    if let Some(err) = g.get("error") {
        return Err(invalid(format!("upstream error: {}", error_message(err))));
    }
    let rid = g.get("responseId").and_then(Value::as_str).unwrap_or("");
    let model = g.get("modelVersion").and_then(Value::as_str).unwrap_or("");
    let mut b = Blocks {
        response_id: rid,
        blocks: Vec::new(),
        thinking: None,
        calls: 0,
    };
    let cand = first_candidate(g);
    if let Some(parts) = cand
        .and_then(|c| c.get("content"))
        .and_then(|c| c.get("parts"))
    {
        let parts = parts
            .as_array()
            .ok_or_else(|| invalid("candidate parts must be an array"))?;
        for p in parts {
            b.part(p)?;
        }
    }
    b.flush_thinking(None);
    let has_content = !b.blocks.is_empty();
    let stop = match cand {
        None => {
            if g.get("promptFeedback")
                .and_then(|f| f.get("blockReason"))
                .is_some()
            {
                "refusal"
            } else {
                return Err(invalid("response has no candidates"));
            }
        }
        Some(c) => {
            let reason = c
                .get("finishReason")
                .and_then(Value::as_str)
                .unwrap_or("STOP");
            stop_reason_from_finish(reason, b.calls > 0, has_content).ok_or_else(|| {
                invalid(format!(
                    "upstream finished with {reason} and no usable output"
                ))
            })?
        }
    };
    let usage = claude_usage_json(g.get("usageMetadata").unwrap_or(&Value::Null));
    Ok(json!({
        "id": message_id(rid),
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": b.blocks,
        "stop_reason": stop,
        "stop_sequence": null,
        "usage": usage,
    }))
}

/// One Claude content block as Gemini parts (thinking as `thought` parts whose
/// `thoughtSignature` wraps the Claude signature; server-tool blocks dropped).
pub(super) fn block_to_part(b: &Value) -> Result<Option<Value>, ConvertError> {
    Ok(match b.get("type").and_then(Value::as_str) {
        Some("text") => {
            let t = b.get("text").and_then(Value::as_str).unwrap_or("");
            (!t.is_empty()).then(|| json!({"text": t}))
        }
        Some("thinking") => {
            let t = b.get("thinking").and_then(Value::as_str).unwrap_or("");
            let sig = b.get("signature").and_then(Value::as_str).unwrap_or("");
            let mut p = json!({"text": t, "thought": true});
            if !sig.is_empty() {
                p["thoughtSignature"] = json!(format!("{ANTHROPIC_SIGNATURE_PREFIX}{sig}"));
            }
            (!t.is_empty() || !sig.is_empty()).then_some(p)
        }
        Some("redacted_thinking") => {
            let d = b.get("data").and_then(Value::as_str).unwrap_or("");
            Some(json!({
                "text": "",
                "thought": true,
                "thoughtSignature": format!("{ANTHROPIC_REDACTED_PREFIX}{d}"),
            }))
        }
        Some("tool_use") => {
            let name = b
                .get("name")
                .and_then(Value::as_str)
                .ok_or_else(|| invalid("tool_use without name"))?;
            let args = match b.get("input") {
                Some(a @ Value::Object(_)) => a.clone(),
                _ => json!({}),
            };
            let mut fc = json!({"name": name, "args": args});
            if let Some(id) = b
                .get("id")
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty())
            {
                fc["id"] = json!(id);
            }
            Some(json!({"functionCall": fc}))
        }
        _ => None,
    })
}

/// A Claude message as a Gemini `generateContent` answer: one candidate, `finishReason` per
/// `stop_reason` (`tool_use`/`end_turn`/`stop_sequence` → `STOP`, `max_tokens` →
/// `MAX_TOKENS`, `refusal` → `SAFETY`), `usageMetadata` with the prompt as all input tokens
/// and the cache reads as `cachedContentTokenCount`.
pub fn response_from_claude(body: &Value) -> Result<Value, ConvertError> {
    let obj = body
        .as_object()
        .ok_or_else(|| invalid("Claude response must be a JSON object"))?;
    let blocks = obj
        .get("content")
        .and_then(Value::as_array)
        .ok_or_else(|| ConvertError::Invalid {
            format: "claude",
            message: "`content` must be an array".into(),
        })?;
    let mut parts = Vec::new();
    for b in blocks {
        parts.extend(block_to_part(b)?);
    }
    let finish = finish_from_stop_reason(obj.get("stop_reason").and_then(Value::as_str));
    let mut cand = json!({"index": 0, "finishReason": finish});
    if !parts.is_empty() {
        cand["content"] = json!({"role": "model", "parts": parts});
    }
    let mut out = json!({
        "candidates": [cand],
        "usageMetadata": gemini_usage_json(obj.get("usage").unwrap_or(&Value::Null)),
    });
    if let Some(m) = obj.get("model").and_then(Value::as_str) {
        out["modelVersion"] = json!(m);
    }
    if let Some(id) = obj.get("id").and_then(Value::as_str) {
        out["responseId"] = json!(id);
    }
    Ok(out)
}

/// A Claude error body (`{"type":"error","error":{"type","message"}}`, or anything else) as a
/// Gemini error body `{"error":{"code","message","status"}}`; `code` follows the Claude error
/// type when it names a clearer status (e.g. `overloaded_error` → 503 `UNAVAILABLE`).
pub fn error_from_claude(status: u16, body: &Value) -> Value {
    let err = body.get("error").unwrap_or(body);
    let ty = err.get("type").and_then(Value::as_str);
    let message = err
        .get("message")
        .and_then(Value::as_str)
        .map(str::to_string)
        .or_else(|| body.as_str().map(str::to_string))
        .unwrap_or_else(|| "upstream error".to_string());
    let (code, st) = gemini_status(status, ty);
    json!({"error": {"code": code, "message": message, "status": st}})
}
