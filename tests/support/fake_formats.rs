//! How the fake upstream renders one scripted [`Reply`](super::fake_upstream::Reply) in the
//! OpenAI Chat Completions, OpenAI Responses and Gemini wire formats (the Claude rendering lives
//! in `fake_upstream.rs`, whose child module this is). Shapes follow `shared/docs/protocols.md` §3–§5.
//!
//! The format is chosen by the request path ([`Target::from_request`]):
//! - `POST /v1/chat/completions`: `chat.completion` JSON, or `chat.completion.chunk` events
//!   (role chunk, text pieces or tool-call argument pieces by `index`, a `finish_reason` chunk,
//!   a `choices: []` usage chunk when `stream_options.include_usage` is true, `data: [DONE]`).
//! - `POST /v1/responses`: a `response` object, or `response.created`, `response.in_progress`,
//!   `response.output_item.added`, `response.content_part.added`, `response.output_text.delta`…
//!   / `response.function_call_arguments.delta`…, the `.done` events, `response.completed`.
//! - `POST /v1beta/models/{model}:generateContent` / `:streamGenerateContent` (also `/v1/`):
//!   a `GenerateContentResponse`, or with `?alt=sse` one `data:` event per chunk framed with
//!   CRLF like the real API (without `alt=sse`, one JSON array of the chunks).
//!
//! Usage: the reply's [`Usage`] is four disjoint buckets (fresh input, output, cache write,
//! cache read); each format reports them its own way (see the `*_usage` functions), and
//! [`accounted`] says what a gateway must bill after reading them back.
#![allow(dead_code)]

use serde_json::{Value, json};

use super::Usage;

/// `id` of every Chat Completions answer.
pub const CHAT_ID: &str = "chatcmpl-FakeUpstreamChat0001";
/// Tool-call id in Chat answers and `call_id` of Responses function calls.
pub const CALL_ID: &str = "call_FakeUpstreamCall0001";
/// `id` of every Responses answer.
pub const RESPONSE_ID: &str = "resp_FakeUpstreamResponse0001";
/// Item id of the Responses message item.
pub const RESPONSE_MESSAGE_ID: &str = "msg_FakeUpstreamItem0001";
/// Item id of the Responses function-call item.
pub const FUNCTION_CALL_ID: &str = "fc_FakeUpstreamItem0001";
/// `responseId` of every Gemini answer.
pub const GEMINI_RESPONSE_ID: &str = "FakeGeminiResponse0001";
/// `created` / `created_at` of OpenAI answers.
pub const CREATED: u64 = 1_764_200_000;

/// The wire format of a request to the fake (decided by its path).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum WireFormat {
    /// Anthropic Messages, `POST /v1/messages`.
    Claude,
    /// OpenAI Chat Completions, `POST /v1/chat/completions`.
    OpenAiChat,
    /// OpenAI Responses, `POST /v1/responses`.
    Responses,
    /// Gemini `generateContent` / `streamGenerateContent`.
    Gemini,
}

/// How one request must be answered: format, model and stream options.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    /// The wire format.
    pub format: WireFormat,
    /// The model to echo (the body's `model`, or the Gemini path's model).
    pub model: String,
    /// Whether the request asked for a stream (`"stream": true`, or `:streamGenerateContent`).
    pub stream: bool,
    /// Chat only: `stream_options.include_usage`.
    pub include_usage: bool,
    /// Gemini only: `alt=sse` was in the query (otherwise a stream is one JSON array).
    pub sse: bool,
    /// Gemini only: a Code Assist call (`/v1internal:{method}`), answered wrapped as
    /// `{"response": …}` (every stream chunk too).
    pub code_assist: bool,
}

impl Target {
    /// A Claude request for `model`.
    pub fn claude(model: &str, stream: bool) -> Self {
        Target::new(WireFormat::Claude, model, stream)
    }

    /// A Chat Completions request for `model` (with `include_usage` when streaming).
    pub fn chat(model: &str, stream: bool, include_usage: bool) -> Self {
        Target {
            include_usage,
            ..Target::new(WireFormat::OpenAiChat, model, stream)
        }
    }

    /// A Responses request for `model`.
    pub fn responses(model: &str, stream: bool) -> Self {
        Target::new(WireFormat::Responses, model, stream)
    }

    /// A Gemini request for `model` (`stream` means `:streamGenerateContent?alt=sse`).
    pub fn gemini(model: &str, stream: bool) -> Self {
        Target::new(WireFormat::Gemini, model, stream)
    }

    fn new(format: WireFormat, model: &str, stream: bool) -> Self {
        Target {
            format,
            model: model.to_string(),
            stream,
            include_usage: false,
            sse: true,
            code_assist: false,
        }
    }

    /// The target of an inference request (`None` for any other route). `default_model` is
    /// echoed when the body names none.
    pub fn from_request(
        method: &str,
        path: &str,
        query: Option<&str>,
        body: Option<&Value>,
        default_model: &str,
    ) -> Option<Target> {
        if method != "POST" {
            return None;
        }
        let field = |k: &str| body.and_then(|b| b.get(k));
        let body_model = field("model")
            .and_then(Value::as_str)
            .unwrap_or(default_model);
        let stream = field("stream").and_then(Value::as_bool).unwrap_or(false);
        match path {
            "/v1/messages" => Some(Target::claude(body_model, stream)),
            "/v1/chat/completions" | "/chat/completions" => {
                let include_usage = field("stream_options")
                    .and_then(|o| o.get("include_usage"))
                    .and_then(Value::as_bool)
                    .unwrap_or(false);
                Some(Target::chat(body_model, stream, include_usage))
            }
            "/v1/responses" | "/responses" => Some(Target::responses(body_model, stream)),
            _ if path.starts_with("/v1internal:") => {
                let stream = match path.trim_start_matches("/v1internal:") {
                    "generateContent" => false,
                    "streamGenerateContent" => true,
                    _ => return None,
                };
                let sse = query.is_some_and(|q| q.split('&').any(|kv| kv == "alt=sse"));
                Some(Target {
                    sse,
                    code_assist: true,
                    ..Target::gemini(body_model, stream)
                })
            }
            _ => {
                let (model, action) = gemini_model_action(path)?;
                let stream = match action {
                    "generateContent" => false,
                    "streamGenerateContent" => true,
                    _ => return None,
                };
                let sse = query.is_some_and(|q| q.split('&').any(|kv| kv == "alt=sse"));
                Some(Target {
                    sse,
                    ..Target::gemini(model, stream)
                })
            }
        }
    }
}

/// `(model, action)` of `/v1beta/models/{model}:{action}` or `/v1/models/{model}:{action}`.
pub fn gemini_model_action(path: &str) -> Option<(&str, &str)> {
    let rest = path
        .strip_prefix("/v1beta/models/")
        .or_else(|| path.strip_prefix("/v1/models/"))?;
    rest.rsplit_once(':')
}

/// What a scripted reply says, whatever the format.
#[derive(Clone, Copy, Debug)]
pub enum Content<'a> {
    /// A text answer.
    Text(&'a str),
    /// One tool call with its complete arguments.
    ToolUse {
        /// Tool name.
        name: &'a str,
        /// Arguments (a JSON object).
        input: &'a Value,
    },
}

/// The buckets a gateway must account after reading `u` back from format `f` (§6.9): every
/// format keeps them apart except Gemini, which has no cache-write count, so there the
/// cache-write tokens count as fresh input.
pub fn accounted(f: WireFormat, u: Usage) -> Usage {
    match f {
        WireFormat::Gemini => Usage {
            input_tokens: u.input_tokens + u.cache_creation_input_tokens,
            cache_creation_input_tokens: 0,
            ..u
        },
        _ => u,
    }
}

/// All input tokens (fresh + cache write + cache read), what OpenAI and Gemini call the prompt.
pub fn prompt_total(u: Usage) -> u64 {
    u.input_tokens + u.cache_creation_input_tokens + u.cache_read_input_tokens
}

/// Chat `usage`: `prompt_tokens` (all input), `prompt_tokens_details.cached_tokens` (cache
/// read), `.cache_write_tokens` (cache write, when non-zero), `completion_tokens`,
/// `completion_tokens_details.reasoning_tokens: 0`, `total_tokens`.
pub fn chat_usage(u: Usage) -> Value {
    let prompt = prompt_total(u);
    let mut details = json!({"cached_tokens": u.cache_read_input_tokens, "audio_tokens": 0});
    if u.cache_creation_input_tokens > 0 {
        details["cache_write_tokens"] = json!(u.cache_creation_input_tokens);
    }
    json!({"prompt_tokens": prompt, "completion_tokens": u.output_tokens,
           "total_tokens": prompt + u.output_tokens, "prompt_tokens_details": details,
           "completion_tokens_details": {"reasoning_tokens": 0, "audio_tokens": 0,
               "accepted_prediction_tokens": 0, "rejected_prediction_tokens": 0}})
}

/// Responses `usage`: `input_tokens` (all input), `input_tokens_details {cached_tokens,
/// cache_write_tokens}`, `output_tokens`, `output_tokens_details.reasoning_tokens: 0`,
/// `total_tokens`.
pub fn responses_usage(u: Usage) -> Value {
    let input = prompt_total(u);
    json!({"input_tokens": input,
           "input_tokens_details": {"cached_tokens": u.cache_read_input_tokens,
                                    "cache_write_tokens": u.cache_creation_input_tokens},
           "output_tokens": u.output_tokens, "output_tokens_details": {"reasoning_tokens": 0},
           "total_tokens": input + u.output_tokens})
}

/// Gemini `usageMetadata`: `promptTokenCount` (all input), `cachedContentTokenCount` (cache
/// read, omitted when 0), `candidatesTokenCount`, `totalTokenCount`. A partial one (every
/// stream chunk but the last) has only the prompt count.
pub fn gemini_usage(u: Usage, complete: bool) -> Value {
    let prompt = prompt_total(u);
    if !complete {
        return json!({"promptTokenCount": prompt, "totalTokenCount": prompt});
    }
    let mut v = json!({"promptTokenCount": prompt, "candidatesTokenCount": u.output_tokens,
                       "totalTokenCount": prompt + u.output_tokens,
                       "promptTokensDetails": [{"modality": "TEXT", "tokenCount": prompt}]});
    if u.cache_read_input_tokens > 0 {
        v["cachedContentTokenCount"] = json!(u.cache_read_input_tokens);
    }
    v
}

/// The canonical Gemini `status` for an HTTP code.
pub fn gemini_status(code: u16) -> &'static str {
    match code {
        400 => "INVALID_ARGUMENT",
        401 => "UNAUTHENTICATED",
        403 => "PERMISSION_DENIED",
        404 => "NOT_FOUND",
        409 => "ABORTED",
        413 | 429 => "RESOURCE_EXHAUSTED",
        499 => "CANCELLED",
        501 => "UNIMPLEMENTED",
        503 | 529 => "UNAVAILABLE",
        504 => "DEADLINE_EXCEEDED",
        _ => "INTERNAL",
    }
}

/// The HTTP code a Claude error type usually comes with (for mid-stream errors).
pub fn code_for_claude_type(error_type: &str) -> u16 {
    match error_type {
        "invalid_request_error" => 400,
        "authentication_error" => 401,
        "permission_error" => 403,
        "not_found_error" => 404,
        "request_too_large" => 413,
        "rate_limit_error" => 429,
        "overloaded_error" => 529,
        _ => 500,
    }
}

/// OpenAI `(type, code)` for a Claude error type and HTTP status (§3.4).
pub fn openai_error_kind(code: u16, error_type: &str) -> (&'static str, Option<&'static str>) {
    match (code, error_type) {
        (401, _) | (_, "authentication_error") => {
            ("invalid_request_error", Some("invalid_api_key"))
        }
        (403, _) | (_, "permission_error") => (
            "invalid_request_error",
            Some("unsupported_country_region_territory"),
        ),
        (404, _) | (_, "not_found_error") => ("invalid_request_error", Some("model_not_found")),
        (429, _) | (_, "rate_limit_error") => ("requests", Some("rate_limit_exceeded")),
        (400..=499, _) | (_, "invalid_request_error") => ("invalid_request_error", None),
        _ => ("server_error", Some("server_error")),
    }
}

/// The error body of format `f` for an HTTP `code`, a Claude-style `error_type` and `message`.
/// The Claude shape is `{"type":"error","error":{type,message},"request_id"}`; OpenAI (Chat and
/// Responses) `{"error":{message,type,param,code}}`; Gemini `{"error":{code,message,status}}`.
pub fn error_body(f: WireFormat, code: u16, error_type: &str, message: &str) -> Value {
    match f {
        WireFormat::Claude => {
            json!({"type": "error", "error": {"type": error_type, "message": message}, "request_id": "req_fake_error"})
        }
        WireFormat::OpenAiChat | WireFormat::Responses => {
            let (ty, c) = openai_error_kind(code, error_type);
            json!({"error": {"message": message, "type": ty, "param": null, "code": c}})
        }
        WireFormat::Gemini => {
            json!({"error": {"code": code, "message": message, "status": gemini_status(code)}})
        }
    }
}

/// The non-streaming answer of format `f` (not Claude) saying `c` with usage `u`.
pub fn json_body(f: WireFormat, c: Content<'_>, u: Usage, model: &str) -> Value {
    match f {
        WireFormat::Claude => unreachable!("the Claude rendering is in fake_upstream"),
        WireFormat::OpenAiChat => {
            let (message, finish) = match c {
                Content::Text(t) => (
                    json!({"role": "assistant", "content": t, "refusal": null, "annotations": []}),
                    "stop",
                ),
                Content::ToolUse { name, input } => (
                    json!({"role": "assistant", "content": null, "refusal": null, "annotations": [],
                           "tool_calls": [{"id": CALL_ID, "type": "function",
                                           "function": {"name": name, "arguments": input.to_string()}}]}),
                    "tool_calls",
                ),
            };
            json!({"id": CHAT_ID, "object": "chat.completion", "created": CREATED, "model": model,
                   "choices": [{"index": 0, "message": message, "logprobs": null, "finish_reason": finish}],
                   "usage": chat_usage(u), "service_tier": "default", "system_fingerprint": "fp_fake"})
        }
        WireFormat::Responses => {
            let item = match c {
                Content::Text(t) => responses_message_item(t, "completed"),
                Content::ToolUse { name, input } => {
                    responses_call_item(name, &input.to_string(), "completed")
                }
            };
            let mut r = responses_skeleton(model, "completed");
            r["output"] = json!([item]);
            r["usage"] = responses_usage(u);
            r
        }
        WireFormat::Gemini => gemini_chunk(vec![gemini_part(c)], Some("STOP"), u, true, model),
    }
}

fn responses_skeleton(model: &str, status: &str) -> Value {
    json!({"id": RESPONSE_ID, "object": "response", "created_at": CREATED, "status": status,
           "background": false, "error": null, "incomplete_details": null, "instructions": null,
           "max_output_tokens": null, "model": model, "output": [], "parallel_tool_calls": true,
           "previous_response_id": null, "reasoning": {"effort": null, "summary": null},
           "store": false, "temperature": 1.0, "text": {"format": {"type": "text"}},
           "tool_choice": "auto", "tools": [], "top_p": 1.0, "truncation": "disabled",
           "usage": null, "metadata": {}})
}

fn responses_message_item(text: &str, status: &str) -> Value {
    let content = if status == "in_progress" {
        json!([])
    } else {
        json!([{"type": "output_text", "text": text, "annotations": [], "logprobs": []}])
    };
    json!({"type": "message", "id": RESPONSE_MESSAGE_ID, "status": status, "role": "assistant",
           "content": content})
}

fn responses_call_item(name: &str, arguments: &str, status: &str) -> Value {
    json!({"type": "function_call", "id": FUNCTION_CALL_ID, "call_id": CALL_ID, "name": name,
           "arguments": arguments, "status": status})
}

fn gemini_part(c: Content<'_>) -> Value {
    match c {
        Content::Text(t) => json!({"text": t}),
        Content::ToolUse { name, input } => json!({"functionCall": {"name": name, "args": input}}),
    }
}

fn gemini_chunk(
    parts: Vec<Value>,
    finish: Option<&str>,
    u: Usage,
    complete_usage: bool,
    model: &str,
) -> Value {
    let mut cand = json!({"index": 0, "content": {"role": "model", "parts": parts}});
    if let Some(f) = finish {
        cand["finishReason"] = json!(f);
    }
    json!({"candidates": [cand], "usageMetadata": gemini_usage(u, complete_usage),
           "modelVersion": model, "responseId": GEMINI_RESPONSE_ID})
}

/// A mid-stream failure: keep the first `n` events, then end with this error.
#[derive(Clone, Copy, Debug)]
pub struct MidStreamError<'a> {
    /// Events kept before the error.
    pub after: usize,
    /// Claude-style error type (mapped per format).
    pub error_type: &'a str,
    /// Error message.
    pub message: &'a str,
}

/// The stream body pieces of format `f` (not Claude) for `c`: one piece per SSE event (or, for
/// a Gemini stream without `alt=sse`, one piece holding the whole JSON array).
pub fn stream_pieces(
    t: &Target,
    c: Content<'_>,
    u: Usage,
    model: &str,
    err: Option<MidStreamError<'_>>,
) -> Vec<Vec<u8>> {
    match t.format {
        WireFormat::Claude => unreachable!("the Claude rendering is in fake_upstream"),
        WireFormat::OpenAiChat => chat_stream(t.include_usage, c, u, model, err),
        WireFormat::Responses => responses_stream(c, u, model, err),
        WireFormat::Gemini => {
            let chunks = gemini_stream_chunks(c, u, model);
            let mut chunks: Vec<Value> = chunks;
            if let Some(e) = err {
                chunks.truncate(e.after);
                let code = code_for_claude_type(e.error_type);
                chunks.push(error_body(
                    WireFormat::Gemini,
                    code,
                    e.error_type,
                    e.message,
                ));
            }
            if t.sse {
                chunks
                    .iter()
                    .map(|v| format!("data: {v}\r\n\r\n").into_bytes())
                    .collect()
            } else {
                vec![Value::Array(chunks).to_string().into_bytes()]
            }
        }
    }
}

fn data_event(v: &Value) -> Vec<u8> {
    format!("data: {v}\n\n").into_bytes()
}

fn named_event(v: &Value) -> Vec<u8> {
    let ty = v["type"].as_str().unwrap_or("message");
    format!("event: {ty}\ndata: {v}\n\n").into_bytes()
}

fn chat_stream(
    include_usage: bool,
    c: Content<'_>,
    u: Usage,
    model: &str,
    err: Option<MidStreamError<'_>>,
) -> Vec<Vec<u8>> {
    let chunk = |delta: Value, finish: Value| {
        let mut v = json!({"id": CHAT_ID, "object": "chat.completion.chunk", "created": CREATED,
                           "model": model, "system_fingerprint": "fp_fake",
                           "choices": [{"index": 0, "delta": delta, "logprobs": null, "finish_reason": finish}]});
        if include_usage {
            v["usage"] = Value::Null;
        }
        v
    };
    let mut ev = Vec::new();
    let finish = match c {
        Content::Text(text) => {
            ev.push(chunk(
                json!({"role": "assistant", "content": "", "refusal": null}),
                Value::Null,
            ));
            for p in super::split_pieces(text, 4) {
                ev.push(chunk(json!({"content": p}), Value::Null));
            }
            "stop"
        }
        Content::ToolUse { name, input } => {
            ev.push(chunk(
                json!({"role": "assistant", "content": null, "refusal": null}),
                Value::Null,
            ));
            ev.push(chunk(
                json!({"tool_calls": [{"index": 0, "id": CALL_ID, "type": "function",
                                       "function": {"name": name, "arguments": ""}}]}),
                Value::Null,
            ));
            for p in super::split_pieces(&input.to_string(), 3) {
                ev.push(chunk(
                    json!({"tool_calls": [{"index": 0, "function": {"arguments": p}}]}),
                    Value::Null,
                ));
            }
            "tool_calls"
        }
    };
    ev.push(chunk(json!({}), json!(finish)));
    if include_usage {
        ev.push(
            json!({"id": CHAT_ID, "object": "chat.completion.chunk", "created": CREATED,
                       "model": model, "system_fingerprint": "fp_fake", "choices": [],
                       "usage": chat_usage(u)}),
        );
    }
    let mut out: Vec<Vec<u8>> = ev.iter().map(data_event).collect();
    if let Some(e) = err {
        out.truncate(e.after);
        let code = code_for_claude_type(e.error_type);
        out.push(data_event(&error_body(
            WireFormat::OpenAiChat,
            code,
            e.error_type,
            e.message,
        )));
    } else {
        out.push(b"data: [DONE]\n\n".to_vec());
    }
    out
}

fn responses_stream(
    c: Content<'_>,
    u: Usage,
    model: &str,
    err: Option<MidStreamError<'_>>,
) -> Vec<Vec<u8>> {
    let mut ev: Vec<Value> = Vec::new();
    let skeleton = responses_skeleton(model, "in_progress");
    ev.push(json!({"type": "response.created", "response": skeleton}));
    ev.push(json!({"type": "response.in_progress", "response": skeleton}));
    let done_item = match c {
        Content::Text(text) => {
            ev.push(
                json!({"type": "response.output_item.added", "output_index": 0,
                           "item": responses_message_item("", "in_progress")}),
            );
            let part = |t: &str| json!({"type": "output_text", "text": t, "annotations": [], "logprobs": []});
            ev.push(
                json!({"type": "response.content_part.added", "item_id": RESPONSE_MESSAGE_ID,
                           "output_index": 0, "content_index": 0, "part": part("")}),
            );
            for p in super::split_pieces(text, 4) {
                ev.push(
                    json!({"type": "response.output_text.delta", "item_id": RESPONSE_MESSAGE_ID,
                               "output_index": 0, "content_index": 0, "delta": p, "logprobs": []}),
                );
            }
            ev.push(
                json!({"type": "response.output_text.done", "item_id": RESPONSE_MESSAGE_ID,
                           "output_index": 0, "content_index": 0, "text": text, "logprobs": []}),
            );
            ev.push(
                json!({"type": "response.content_part.done", "item_id": RESPONSE_MESSAGE_ID,
                           "output_index": 0, "content_index": 0, "part": part(text)}),
            );
            responses_message_item(text, "completed")
        }
        Content::ToolUse { name, input } => {
            let args = input.to_string();
            ev.push(
                json!({"type": "response.output_item.added", "output_index": 0,
                           "item": responses_call_item(name, "", "in_progress")}),
            );
            for p in super::split_pieces(&args, 3) {
                ev.push(json!({"type": "response.function_call_arguments.delta",
                               "item_id": FUNCTION_CALL_ID, "output_index": 0, "delta": p}));
            }
            ev.push(json!({"type": "response.function_call_arguments.done",
                           "item_id": FUNCTION_CALL_ID, "output_index": 0, "name": name,
                           "arguments": args}));
            responses_call_item(name, &args, "completed")
        }
    };
    ev.push(json!({"type": "response.output_item.done", "output_index": 0, "item": done_item}));
    let mut done = responses_skeleton(model, "completed");
    done["output"] = json!([done_item]);
    done["usage"] = responses_usage(u);
    ev.push(json!({"type": "response.completed", "response": done}));
    if let Some(e) = err {
        ev.truncate(e.after);
        let code = code_for_claude_type(e.error_type);
        let (_, c) = openai_error_kind(code, e.error_type);
        let mut failed = responses_skeleton(model, "failed");
        failed["error"] = json!({"code": c.unwrap_or("server_error"), "message": e.message});
        ev.push(json!({"type": "response.failed", "response": failed}));
    }
    for (i, v) in ev.iter_mut().enumerate() {
        v["sequence_number"] = json!(i);
    }
    ev.iter().map(named_event).collect()
}

fn gemini_stream_chunks(c: Content<'_>, u: Usage, model: &str) -> Vec<Value> {
    match c {
        Content::Text(text) => {
            let pieces = super::split_pieces(text, 4);
            let n = pieces.len();
            pieces
                .into_iter()
                .enumerate()
                .map(|(i, p)| {
                    let last = i + 1 == n;
                    gemini_chunk(
                        vec![json!({"text": p})],
                        last.then_some("STOP"),
                        u,
                        last,
                        model,
                    )
                })
                .collect()
        }
        Content::ToolUse { .. } => {
            vec![gemini_chunk(
                vec![gemini_part(c)],
                Some("STOP"),
                u,
                true,
                model,
            )]
        }
    }
}
