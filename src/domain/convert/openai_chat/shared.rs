//! Helpers shared by the two OpenAI converters (`openai_chat` and `responses`): usage buckets,
//! stop reasons, tool ids, data URLs, signature envelopes and Claude content access.

use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};

use crate::domain::convert::ConvertError;

/// `max_tokens` sent to Claude when an OpenAI request has no output cap. The app may replace it
/// with the provider's configured default before sending.
pub const DEFAULT_MAX_TOKENS: u64 = 8192;

/// Smallest thinking budget Claude accepts.
const MIN_THINKING_BUDGET: u64 = 1024;

pub(crate) fn invalid(format: &'static str, message: impl Into<String>) -> ConvertError {
    ConvertError::Invalid {
        format,
        message: message.into(),
    }
}

pub(crate) fn unsupported(feature: impl Into<String>) -> ConvertError {
    ConvertError::Unsupported {
        feature: feature.into(),
    }
}

/// Usage in four disjoint numbers: input neither read from nor written to the cache, cache
/// reads, cache writes, and all output (reasoning included), plus the reasoning share if known.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Tokens {
    pub fresh: u64,
    pub cache_read: u64,
    pub cache_write: u64,
    pub output: u64,
    pub reasoning: Option<u64>,
}

fn num(v: &Value, path: &[&str]) -> Option<u64> {
    let mut cur = v;
    for p in path {
        cur = cur.get(p)?;
    }
    cur.as_u64()
        .or_else(|| cur.as_f64().filter(|f| *f >= 0.0).map(|f| f as u64))
}

impl Tokens {
    /// All input tokens (what OpenAI calls prompt/input tokens).
    pub fn input_total(&self) -> u64 {
        self.fresh
            .saturating_add(self.cache_read)
            .saturating_add(self.cache_write)
    }

    /// Reads a Claude usage object.
    pub fn from_claude(u: &Value) -> Self {
        Self {
            fresh: num(u, &["input_tokens"]).unwrap_or(0),
            cache_read: num(u, &["cache_read_input_tokens"]).unwrap_or(0),
            cache_write: num(u, &["cache_creation_input_tokens"]).unwrap_or(0),
            output: num(u, &["output_tokens"]).unwrap_or(0),
            reasoning: num(u, &["output_tokens_details", "thinking_tokens"]),
        }
    }

    /// Merges a later Claude usage object the way the Anthropic SDK does: `output_tokens`
    /// always, input counts only when present and non-null.
    pub fn merge_claude(&mut self, u: &Value) {
        if let Some(n) = num(u, &["input_tokens"]) {
            self.fresh = n;
        }
        if let Some(n) = num(u, &["cache_read_input_tokens"]) {
            self.cache_read = n;
        }
        if let Some(n) = num(u, &["cache_creation_input_tokens"]) {
            self.cache_write = n;
        }
        if let Some(n) = num(u, &["output_tokens"]) {
            self.output = n;
        }
        if let Some(n) = num(u, &["output_tokens_details", "thinking_tokens"]) {
            self.reasoning = Some(n);
        }
    }

    /// A Claude usage object (input excludes cache reads and writes).
    pub fn to_claude(self) -> Value {
        json!({
            "input_tokens": self.fresh,
            "cache_creation_input_tokens": self.cache_write,
            "cache_read_input_tokens": self.cache_read,
            "output_tokens": self.output,
        })
    }

    /// Reads an OpenAI usage object, Chat (`prompt_tokens`…) or Responses (`input_tokens`…)
    /// names; relay aliases (`cache_read_input_tokens`…) only when the official fields are
    /// absent.
    pub fn from_openai(u: &Value, chat: bool) -> Self {
        let (inp, out, idet, odet) = if chat {
            (
                "prompt_tokens",
                "completion_tokens",
                "prompt_tokens_details",
                "completion_tokens_details",
            )
        } else {
            (
                "input_tokens",
                "output_tokens",
                "input_tokens_details",
                "output_tokens_details",
            )
        };
        let total_in = num(u, &[inp]).unwrap_or(0);
        let read = num(u, &[idet, "cached_tokens"])
            .or_else(|| num(u, &["cache_read_input_tokens"]))
            .unwrap_or(0);
        let write = num(u, &[idet, "cache_write_tokens"])
            .or_else(|| num(u, &["cache_creation_input_tokens"]))
            .unwrap_or(0);
        Self {
            fresh: total_in.saturating_sub(read).saturating_sub(write),
            cache_read: read,
            cache_write: write,
            output: num(u, &[out]).unwrap_or(0),
            reasoning: num(u, &[odet, "reasoning_tokens"]),
        }
    }

    /// A Chat Completions usage object.
    pub fn to_chat(self) -> Value {
        let mut details = json!({"cached_tokens": self.cache_read});
        if self.cache_write > 0 {
            details["cache_write_tokens"] = json!(self.cache_write);
        }
        let mut u = json!({
            "prompt_tokens": self.input_total(),
            "completion_tokens": self.output,
            "total_tokens": self.input_total().saturating_add(self.output),
            "prompt_tokens_details": details,
        });
        if let Some(r) = self.reasoning {
            u["completion_tokens_details"] = json!({"reasoning_tokens": r});
        }
        u
    }

    /// A Responses usage object (all five fields present).
    pub fn to_responses(self) -> Value {
        json!({
            "input_tokens": self.input_total(),
            "input_tokens_details": {"cached_tokens": self.cache_read, "cache_write_tokens": self.cache_write},
            "output_tokens": self.output,
            "output_tokens_details": {"reasoning_tokens": self.reasoning.unwrap_or(0)},
            "total_tokens": self.input_total().saturating_add(self.output),
        })
    }
}

/// A Claude `tool_use` id for a foreign id: kept when it matches `^[a-zA-Z0-9_-]{1,64}$`,
/// otherwise illegal characters become `_` and a hash of the original is appended, so the call
/// and its result map to the same id on every turn.
pub(crate) fn claude_tool_id(id: &str) -> String {
    let ok = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == '-';
    if !id.is_empty() && id.len() <= 64 && id.chars().all(ok) {
        return id.to_string();
    }
    let clean: String = id
        .chars()
        .map(|c| if ok(c) { c } else { '_' })
        .take(40)
        .collect();
    let hash = hex::encode(Sha256::digest(id.as_bytes()));
    format!("{clean}_{}", hash.get(..12).unwrap_or(&hash))
}

/// A stable id for a tool call that arrived without one (derived from the message id and the
/// call position).
pub(crate) fn synthetic_call_id(seed: &str, index: u64) -> String {
    let hash = hex::encode(Sha256::digest(format!("{seed}:{index}").as_bytes()));
    format!("call_{}", hash.get(..24).unwrap_or(&hash))
}

/// Claude `stop_reason` for a Chat `finish_reason`.
pub(crate) fn chat_finish_to_claude(reason: &str, has_tool_calls: bool) -> &'static str {
    match reason {
        "length" => "max_tokens",
        "tool_calls" | "function_call" => "tool_use",
        "content_filter" => "refusal",
        _ if has_tool_calls => "tool_use",
        _ => "end_turn",
    }
}

/// Chat `finish_reason` for a Claude `stop_reason`.
pub(crate) fn claude_stop_to_chat(reason: &str) -> &'static str {
    match reason {
        "max_tokens" | "model_context_window_exceeded" => "length",
        "tool_use" => "tool_calls",
        "refusal" => "content_filter",
        _ => "stop",
    }
}

/// A Claude content field as a list of blocks (`"text"` becomes one text block).
pub(crate) fn claude_blocks(content: Option<&Value>) -> Vec<Value> {
    match content {
        Some(Value::String(s)) => vec![json!({"type": "text", "text": s})],
        Some(Value::Array(a)) => a.clone(),
        _ => Vec::new(),
    }
}

/// The text of a Claude `system` field or a system message content (string or text blocks),
/// blocks joined with a blank line.
pub(crate) fn claude_text(content: Option<&Value>) -> String {
    let parts: Vec<String> = claude_blocks(content)
        .iter()
        .filter_map(|b| b.get("text").and_then(Value::as_str).map(str::to_string))
        .filter(|t| !t.is_empty())
        .collect();
    parts.join("\n\n")
}

/// A data URL for base64 data.
pub(crate) fn data_url(media_type: &str, data: &str) -> String {
    format!("data:{media_type};base64,{data}")
}

/// Splits `data:<mime>;base64,<payload>` into its parts.
pub(crate) fn parse_data_url(url: &str) -> Option<(&str, &str)> {
    let rest = url.strip_prefix("data:")?;
    let (head, data) = rest.split_once(',')?;
    let mime = head.strip_suffix(";base64")?;
    if mime.is_empty() {
        return None;
    }
    Some((mime, data))
}

/// A Claude image or document block for an image URL or data URL.
pub(crate) fn claude_image_from_url(
    url: &str,
    format: &'static str,
) -> Result<Value, ConvertError> {
    if url.starts_with("data:") {
        let (mime, data) = parse_data_url(url)
            .ok_or_else(|| invalid(format, "image data URL must be data:<mime>;base64,<data>"))?;
        if mime == "application/pdf" {
            return Ok(
                json!({"type": "document", "source": {"type": "base64", "media_type": mime, "data": data}}),
            );
        }
        if !matches!(
            mime,
            "image/jpeg" | "image/png" | "image/gif" | "image/webp"
        ) {
            return Err(unsupported(format!("image type {mime}")));
        }
        return Ok(
            json!({"type": "image", "source": {"type": "base64", "media_type": mime, "data": data}}),
        );
    }
    if url.starts_with("http://") || url.starts_with("https://") {
        return Ok(json!({"type": "image", "source": {"type": "url", "url": url}}));
    }
    Err(invalid(format, "image URL must be http(s) or a data URL"))
}

/// The URL (data URL for base64) of a Claude image or document block.
pub(crate) fn claude_source_url(block: &Value) -> Result<String, ConvertError> {
    let src = block.get("source").unwrap_or(&Value::Null);
    match src.get("type").and_then(Value::as_str) {
        Some("base64") => {
            let mt = src
                .get("media_type")
                .and_then(Value::as_str)
                .unwrap_or("application/octet-stream");
            let data = src.get("data").and_then(Value::as_str).unwrap_or("");
            Ok(data_url(mt, data))
        }
        Some("url") => Ok(src
            .get("url")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string()),
        Some("file") => Err(unsupported(
            "file_id references (not portable across providers)",
        )),
        Some("text") => Err(unsupported("plain-text document source")),
        other => Err(unsupported(format!(
            "{} source {}",
            block_type(block),
            other.unwrap_or("?")
        ))),
    }
}

pub(crate) fn block_type(b: &Value) -> &str {
    b.get("type").and_then(Value::as_str).unwrap_or("")
}

/// Claude Code's `metadata.user_id` is a JSON string holding `session_id`: that becomes the
/// OpenAI `prompt_cache_key` (keeps the upstream prefix cache warm) and the raw value, which
/// carries device and account ids, is not forwarded. Any other user id becomes
/// `safety_identifier`.
pub(crate) fn identity_from_claude(req: &Value, out: &mut Map<String, Value>) {
    let Some(uid) = req.pointer("/metadata/user_id").and_then(Value::as_str) else {
        return;
    };
    if let Ok(v) = serde_json::from_str::<Value>(uid)
        && let Some(sid) = v.get("session_id").and_then(Value::as_str)
    {
        if !sid.is_empty() {
            out.insert("prompt_cache_key".into(), json!(sid));
        }
        return;
    }
    if !uid.is_empty() {
        out.insert("safety_identifier".into(), json!(uid));
    }
}

/// Reasoning effort for a Claude `thinking` config (and `output_config.effort`), or `None` when
/// thinking is off.
pub(crate) fn effort_from_claude(req: &Value) -> Option<String> {
    let thinking = req.get("thinking")?;
    let explicit = req.pointer("/output_config/effort").and_then(Value::as_str);
    match thinking.get("type").and_then(Value::as_str) {
        Some("enabled") => {
            if let Some(e) = explicit {
                return Some(e.to_string());
            }
            let b = thinking
                .get("budget_tokens")
                .and_then(Value::as_u64)
                .unwrap_or(0);
            Some(
                match b {
                    0..=2047 => "low",
                    2048..=4095 => "medium",
                    _ => "high",
                }
                .to_string(),
            )
        }
        Some("adaptive") => Some(explicit.unwrap_or("medium").to_string()),
        _ => None,
    }
}

/// Applies an OpenAI reasoning effort to a Claude request under construction: a thinking
/// budget (low 1024, medium 2048, high 4096, xhigh 8192, max 16384) kept below `max_tokens`;
/// `none` (or a `max_tokens` too small for the minimum budget) leaves thinking off. With
/// thinking on, Claude refuses forced tool use and non-default sampling, so those win and
/// thinking is dropped, or the sampling values are removed.
pub(crate) fn apply_effort(out: &mut Map<String, Value>, effort: Option<&str>) {
    let budget = match effort {
        Some("minimal") | Some("low") => 1024,
        Some("medium") => 2048,
        Some("high") => 4096,
        Some("xhigh") => 8192,
        Some("max") => 16384,
        _ => return,
    };
    let max = out
        .get("max_tokens")
        .and_then(Value::as_u64)
        .unwrap_or(DEFAULT_MAX_TOKENS);
    if max <= MIN_THINKING_BUDGET {
        return;
    }
    let forced = matches!(
        out.get("tool_choice")
            .and_then(|c| c.get("type"))
            .and_then(Value::as_str),
        Some("any") | Some("tool")
    );
    if forced {
        return;
    }
    let budget = u64::min(budget, max - 1).max(MIN_THINKING_BUDGET);
    out.insert(
        "thinking".into(),
        json!({"type": "enabled", "budget_tokens": budget}),
    );
    if out
        .get("temperature")
        .and_then(Value::as_f64)
        .is_some_and(|t| t != 1.0)
    {
        out.remove("temperature");
    }
    if out
        .get("top_p")
        .and_then(Value::as_f64)
        .is_some_and(|p| p < 0.95)
    {
        out.remove("top_p");
    }
}

/// Copies sampling values into a Claude request: temperature clamped to 0–1, and only one of
/// temperature and top_p (newer Claude models refuse both).
pub(crate) fn sampling_to_claude(req: &Value, out: &mut Map<String, Value>) {
    let temp = req.get("temperature").and_then(Value::as_f64);
    if let Some(t) = temp {
        out.insert("temperature".into(), json!(t.clamp(0.0, 1.0)));
    } else if let Some(p) = req.get("top_p").and_then(Value::as_f64) {
        out.insert("top_p".into(), json!(p));
    }
}

/// The Claude `tool_choice` for an OpenAI one (`"auto"`, `"required"`, `{type:function,…}`);
/// `flat` selects the Responses shape (`{type:function, name}`).
pub(crate) fn tool_choice_to_claude(tc: &Value) -> Option<Value> {
    match tc {
        Value::String(s) => match s.as_str() {
            "auto" => Some(json!({"type": "auto"})),
            "required" => Some(json!({"type": "any"})),
            "none" => Some(json!({"type": "none"})),
            _ => None,
        },
        Value::Object(o) => {
            let ty = o.get("type").and_then(Value::as_str).unwrap_or("");
            let name = o
                .get("name")
                .or_else(|| o.get("function").and_then(|f| f.get("name")))
                .and_then(Value::as_str);
            match (ty, name) {
                ("function" | "custom", Some(n)) => Some(json!({"type": "tool", "name": n})),
                ("allowed_tools", _) => {
                    let mode = o.get("mode").and_then(Value::as_str).unwrap_or("auto");
                    Some(json!({"type": if mode == "required" { "any" } else { "auto" }}))
                }
                _ => Some(json!({"type": "auto"})),
            }
        }
        _ => None,
    }
}

/// Sets `disable_parallel_tool_use` on a Claude request when `parallel_tool_calls` is false.
pub(crate) fn parallel_to_claude(req: &Value, out: &mut Map<String, Value>) {
    if req.get("parallel_tool_calls").and_then(Value::as_bool) != Some(false)
        || !out.contains_key("tools")
    {
        return;
    }
    let tc = out
        .entry("tool_choice")
        .or_insert_with(|| json!({"type": "auto"}));
    if tc.get("type").and_then(Value::as_str) != Some("none") {
        tc["disable_parallel_tool_use"] = json!(true);
    }
}

/// Structured output into Claude `output_config.format`: `json_schema` maps, `json_object`
/// has no Claude equivalent.
pub(crate) fn format_to_claude(
    ty: &str,
    schema: Option<&Value>,
    out: &mut Map<String, Value>,
) -> Result<(), ConvertError> {
    match ty {
        "json_schema" => {
            let schema = schema.cloned().unwrap_or_else(|| json!({"type": "object"}));
            out.insert(
                "output_config".into(),
                json!({"format": {"type": "json_schema", "schema": schema}}),
            );
            Ok(())
        }
        "json_object" => Err(unsupported("json_object response format")),
        _ => Ok(()),
    }
}

/// Parses tool-call arguments (a JSON string, or an object from lax upstreams); an empty
/// string means no arguments.
pub(crate) fn parse_arguments(
    args: Option<&Value>,
    call_id: &str,
    format: &'static str,
) -> Result<Value, ConvertError> {
    match args {
        None | Some(Value::Null) => Ok(json!({})),
        Some(Value::String(s)) if s.trim().is_empty() => Ok(json!({})),
        Some(Value::String(s)) => match serde_json::from_str::<Value>(s) {
            Ok(v @ Value::Object(_)) => Ok(v),
            _ => Err(invalid(
                format,
                format!("arguments of tool call {call_id} are not a JSON object"),
            )),
        },
        Some(v @ Value::Object(_)) => Ok(v.clone()),
        Some(_) => Err(invalid(
            format,
            format!("arguments of tool call {call_id} are not a JSON object"),
        )),
    }
}

/// Claude `system`, as text blocks, from collected texts (`None` when there are none).
pub(crate) fn system_blocks(texts: Vec<String>) -> Option<Value> {
    let blocks: Vec<Value> = texts
        .into_iter()
        .filter(|t| !t.trim().is_empty())
        .map(|t| json!({"type": "text", "text": t}))
        .collect();
    (!blocks.is_empty()).then_some(Value::Array(blocks))
}

/// Appends a block to a Claude message list, merging into the last message when it has the
/// same role (tool results are kept before other content of a user turn by construction).
pub(crate) fn push_block(messages: &mut Vec<Value>, role: &str, block: Value) {
    if let Some(last) = messages.last_mut()
        && last.get("role").and_then(Value::as_str) == Some(role)
        && let Some(arr) = last.get_mut("content").and_then(Value::as_array_mut)
    {
        arr.push(block);
        return;
    }
    messages.push(json!({"role": role, "content": [block]}));
}

/// Whether a Claude text block would be empty (Claude rejects empty text blocks).
pub(crate) fn blank(s: &str) -> bool {
    s.trim().is_empty()
}

const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/// base64url without padding.
pub(crate) fn b64url_encode(data: &[u8]) -> String {
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let b = [
            chunk.first().copied().unwrap_or(0),
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        let chars = chunk.len() + 1;
        for i in 0..chars {
            let idx = ((n >> (18 - 6 * i)) & 63) as usize;
            out.push(char::from(B64[idx]));
        }
    }
    out
}

/// Decodes base64url without padding (padding and standard alphabet tolerated).
pub(crate) fn b64url_decode(s: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(s.len() * 3 / 4);
    let mut acc: u32 = 0;
    let mut bits = 0;
    for c in s.bytes() {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'-' | b'+' => 62,
            b'_' | b'/' => 63,
            b'=' => continue,
            _ => return None,
        };
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push(((acc >> bits) & 0xFF) as u8);
        }
    }
    Some(out)
}

/// Prefix of a signature envelope made by cch for an OpenAI reasoning item (carried in a
/// Claude thinking `signature`).
pub(crate) const ENVELOPE_OPENAI: &str = "cch1.openai.";
/// Prefix of an envelope carrying an Anthropic thinking block (in Responses
/// `encrypted_content`).
pub(crate) const ENVELOPE_ANTHROPIC: &str = "cch1.anthropic.";

/// Wraps a JSON payload in an envelope with the given prefix.
pub(crate) fn envelope(prefix: &str, payload: &Value) -> String {
    format!("{prefix}{}", b64url_encode(payload.to_string().as_bytes()))
}

/// Unwraps an envelope with the given prefix.
pub(crate) fn open_envelope(prefix: &str, s: &str) -> Option<Value> {
    let body = s.strip_prefix(prefix)?;
    serde_json::from_slice(&b64url_decode(body)?).ok()
}
