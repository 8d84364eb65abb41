//! A fake AI API on `127.0.0.1:0` that speaks Anthropic Messages, OpenAI Chat Completions,
//! OpenAI Responses and Gemini (by request path), for integration tests and the load benchmark.
//!
//! It is a hand-written HTTP/1.1 server on raw tokio sockets, so that every byte and every pause
//! is under the test's control: a first-byte delay sends nothing at all (not even headers), a
//! drop closes the socket in the middle of a chunked body, and a stall or a drip pauses between
//! SSE events. Keep-alive is supported and nothing sleeps unless a reply is scripted to, so it
//! serves thousands of requests per second on loopback.
//!
//! Routes (inference routes share one queue of scripted replies, each rendered in the format of
//! the request that consumes it; see `fake_formats.rs` for the non-Claude shapes):
//! - `POST /v1/messages` (any query string, e.g. `?beta=true`): the next scripted [`Reply`]
//!   (see [`FakeUpstream::push`]), or the default one when the queue is empty.
//! - `POST /v1/chat/completions`, `POST /v1/responses`,
//!   `POST /v1beta/models/{model}:generateContent` and `:streamGenerateContent[?alt=sse]` (also
//!   under `/v1/models/`): the same, in that format.
//! - `POST /v1/messages/count_tokens`: `{"input_tokens": N}`; Gemini `:countTokens`:
//!   `{"totalTokens": N}`.
//! - Code Assist (Gemini CLI with Google login): `POST /v1internal:generateContent`,
//!   `:streamGenerateContent?alt=sse` (the model from the envelope's `model`), answered like
//!   Gemini but wrapped as `{"response": …}`; `/v1internal:countTokens`: `{"totalTokens": N}`.
//! - `POST /token`: an OAuth refresh (`ya29.fresh-N`, counted; see
//!   [`FakeUpstream::set_token_status`]).
//! - `POST /v1/responses/compact`: the next scripted reply (script a raw JSON one).
//! - `GET /v1/models`: an Anthropic-shaped model list; `GET /v1beta/models`: a Gemini one.
//! - anything else: `404` with a Claude `not_found_error` body.
//!
//! Every request is recorded ([`FakeUpstream::requests`]) unless recording is switched off
//! ([`FakeUpstream::set_recording`]), which the benchmark does to keep memory flat.
#![allow(dead_code)]

use std::collections::VecDeque;
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

/// The non-Claude renderings (a child module so that the load bench can include this file
/// alone by `#[path]`).
#[path = "fake_formats.rs"]
pub mod fake_formats;

use fake_formats::{Content, MidStreamError, Target, WireFormat};

/// The message id used in every reply (fixed so that replies are byte-for-byte reproducible).
pub const MESSAGE_ID: &str = "msg_01FakeUpstreamMessage0001";
/// The tool-use id used in tool-use replies.
pub const TOOL_USE_ID: &str = "toolu_01FakeUpstreamToolUse01";
/// The model echoed when the request has no `model` field.
pub const DEFAULT_MODEL: &str = "claude-fake-1";
/// The text of the default reply.
pub const DEFAULT_TEXT: &str =
    "Hello from the fake upstream. This answer arrives in several pieces.";

/// Largest request head accepted (request line plus headers).
const MAX_HEAD: usize = 64 * 1024;

/// Token usage reported by a reply (Anthropic `usage` fields).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Usage {
    /// `input_tokens`: fresh input, neither read from nor written to the cache.
    pub input_tokens: u64,
    /// `output_tokens`.
    pub output_tokens: u64,
    /// `cache_creation_input_tokens` (also reported as `cache_creation.ephemeral_5m_input_tokens`).
    pub cache_creation_input_tokens: u64,
    /// `cache_read_input_tokens`.
    pub cache_read_input_tokens: u64,
}

impl Default for Usage {
    /// Non-zero in every field, so that a lost field is noticed: 25 in, 15 out, 30 cache write,
    /// 2048 cache read.
    fn default() -> Self {
        Usage {
            input_tokens: 25,
            output_tokens: 15,
            cache_creation_input_tokens: 30,
            cache_read_input_tokens: 2048,
        }
    }
}

#[derive(Clone, Debug)]
enum Kind {
    /// Text answer; streams iff the request asked for `"stream": true`.
    Auto(String),
    Message(String),
    Stream(String),
    ToolUse {
        name: String,
        input: Value,
        stream: bool,
    },
    Status {
        code: u16,
        content_type: String,
        body: Vec<u8>,
    },
    /// An error rendered in the request's format.
    Error {
        code: u16,
        error_type: String,
        message: String,
    },
}

/// One scripted answer of the fake upstream, built with the constructors below and refined with
/// the modifiers (usage, headers, faults).
#[derive(Clone, Debug)]
pub struct Reply {
    kind: Kind,
    usage: Usage,
    model: Option<String>,
    headers: Vec<(String, String)>,
    delay_first_byte: Option<Duration>,
    stall: Option<(usize, Duration)>,
    drop_after: Option<usize>,
    drip: Option<Duration>,
    error_after: Option<(usize, String, String)>,
}

impl Default for Reply {
    /// [`Reply::text`] with [`DEFAULT_TEXT`].
    fn default() -> Self {
        Reply::text(DEFAULT_TEXT)
    }
}

impl Reply {
    fn new(kind: Kind) -> Self {
        Reply {
            kind,
            usage: Usage::default(),
            model: None,
            headers: Vec::new(),
            delay_first_byte: None,
            stall: None,
            drop_after: None,
            drip: None,
            error_after: None,
        }
    }

    /// A text answer that streams if the request body has `"stream": true` and is a JSON
    /// message otherwise (the default reply).
    pub fn text(text: impl Into<String>) -> Self {
        Reply::new(Kind::Auto(text.into()))
    }

    /// A non-streaming Claude message (`application/json`) with one text block,
    /// `stop_reason: end_turn` and full usage.
    pub fn message(text: impl Into<String>) -> Self {
        Reply::new(Kind::Message(text.into()))
    }

    /// A complete Claude SSE stream: `message_start` (usage), `content_block_start`, `ping`,
    /// the text in several `text_delta` pieces, `content_block_stop`, `message_delta`
    /// (`end_turn`, usage) and `message_stop`.
    pub fn stream(text: impl Into<String>) -> Self {
        Reply::new(Kind::Stream(text.into()))
    }

    /// A non-streaming message with one `tool_use` block (`stop_reason: tool_use`).
    pub fn tool_use(name: impl Into<String>, input: Value) -> Self {
        Reply::new(Kind::ToolUse {
            name: name.into(),
            input,
            stream: false,
        })
    }

    /// A streamed tool call: a `tool_use` block whose input arrives as `input_json_delta`
    /// pieces (the first one empty), then `stop_reason: tool_use`.
    pub fn tool_use_stream(name: impl Into<String>, input: Value) -> Self {
        Reply::new(Kind::ToolUse {
            name: name.into(),
            input,
            stream: true,
        })
    }

    /// Any status with a JSON body (e.g. `Reply::status(500, json!({...}))`).
    pub fn status(code: u16, body: Value) -> Self {
        Reply::new(Kind::Status {
            code,
            content_type: "application/json".into(),
            body: body.to_string().into_bytes(),
        })
    }

    /// An error in the request's format, from a Claude error type: on `/v1/messages`
    /// `{"type":"error","error":{"type":..,"message":..},"request_id":..}`, on OpenAI routes
    /// `{"error":{message,type,param,code}}`, on Gemini routes `{"error":{code,message,status}}`
    /// (see [`fake_formats::error_body`]).
    pub fn error(code: u16, error_type: &str, message: &str) -> Self {
        Reply::new(Kind::Error {
            code,
            error_type: error_type.into(),
            message: message.into(),
        })
    }

    /// `529 overloaded_error`.
    pub fn overloaded() -> Self {
        Reply::error(529, "overloaded_error", "Overloaded")
    }

    /// `401 authentication_error` (invalid x-api-key).
    pub fn unauthorized() -> Self {
        Reply::error(401, "authentication_error", "invalid x-api-key")
    }

    /// `400 invalid_request_error` "prompt is too long: 212345 tokens > 200000 maximum".
    pub fn prompt_too_long() -> Self {
        Reply::error(
            400,
            "invalid_request_error",
            "prompt is too long: 212345 tokens > 200000 maximum",
        )
    }

    /// Any status, content type and body bytes (e.g. an HTML error page from a proxy).
    pub fn raw(code: u16, content_type: &str, body: impl Into<Vec<u8>>) -> Self {
        Reply::new(Kind::Status {
            code,
            content_type: content_type.into(),
            body: body.into(),
        })
    }

    /// Sets the usage numbers reported (input, output, cache write, cache read).
    pub fn usage(mut self, input: u64, output: u64, cache_write: u64, cache_read: u64) -> Self {
        self.usage = Usage {
            input_tokens: input,
            output_tokens: output,
            cache_creation_input_tokens: cache_write,
            cache_read_input_tokens: cache_read,
        };
        self
    }

    /// Reports this model instead of echoing the request's `model`.
    pub fn model(mut self, model: impl Into<String>) -> Self {
        self.model = Some(model.into());
        self
    }

    /// Adds a response header (e.g. `retry-after`).
    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers
            .push((name.to_ascii_lowercase(), value.to_string()));
        self
    }

    /// Sends nothing at all (neither headers nor body) before `delay` has passed.
    pub fn delay_first_byte(mut self, delay: Duration) -> Self {
        self.delay_first_byte = Some(delay);
        self
    }

    /// Sends the headers and `n` SSE events, then pauses for `pause`, then sends the rest.
    pub fn stall_after_events(mut self, n: usize, pause: Duration) -> Self {
        self.stall = Some((n, pause));
        self
    }

    /// Sends the headers and `n` events, then closes the connection without finishing the
    /// chunked body (the client sees a body error). For a JSON reply the body is one "event".
    pub fn drop_after_events(mut self, n: usize) -> Self {
        self.drop_after = Some(n);
        self
    }

    /// Sends one event every `interval` (the first one right after the headers).
    pub fn drip(mut self, interval: Duration) -> Self {
        self.drip = Some(interval);
        self
    }

    /// Keeps the first `n` events, then sends `event: error` with this error type and message
    /// and ends the stream cleanly (a mid-stream failure after a 200).
    pub fn error_after_events(mut self, n: usize, error_type: &str, message: &str) -> Self {
        self.error_after = Some((n, error_type.into(), message.into()));
        self
    }

    /// The HTTP status this reply answers with.
    pub fn status_code(&self) -> u16 {
        match &self.kind {
            Kind::Status { code, .. } | Kind::Error { code, .. } => *code,
            _ => 200,
        }
    }

    /// The usage numbers this reply reports.
    pub fn usage_numbers(&self) -> Usage {
        self.usage
    }

    /// What the reply says (`None` for status and error replies).
    pub fn content(&self) -> Option<Content<'_>> {
        match &self.kind {
            Kind::Auto(t) | Kind::Message(t) | Kind::Stream(t) => Some(Content::Text(t)),
            Kind::ToolUse { name, input, .. } => Some(Content::ToolUse { name, input }),
            Kind::Status { .. } | Kind::Error { .. } => None,
        }
    }

    /// Whether the reply is an SSE stream when the request's `stream` flag is `request_stream`.
    pub fn is_stream(&self, request_stream: bool) -> bool {
        match &self.kind {
            Kind::Auto(_) => request_stream,
            Kind::Message(_) => false,
            Kind::Stream(_) => true,
            Kind::ToolUse { stream, .. } => *stream,
            Kind::Status { .. } | Kind::Error { .. } => false,
        }
    }

    fn has_timing_faults(&self) -> bool {
        self.stall.is_some() || self.drop_after.is_some() || self.drip.is_some()
    }

    /// The SSE events (each one `event: ..\ndata: ..\n\n`) this reply streams for `model`,
    /// after `error_after_events` but before `drop_after_events` is applied.
    pub fn sse_events(&self, model: &str) -> Vec<Vec<u8>> {
        let model = self.model.as_deref().unwrap_or(model);
        let u = &self.usage;
        let start_usage = json!({
            "input_tokens": u.input_tokens,
            "cache_creation_input_tokens": u.cache_creation_input_tokens,
            "cache_read_input_tokens": u.cache_read_input_tokens,
            "cache_creation": {"ephemeral_5m_input_tokens": u.cache_creation_input_tokens, "ephemeral_1h_input_tokens": 0},
            "output_tokens": 1,
            "service_tier": "standard",
        });
        let delta_usage = json!({
            "input_tokens": u.input_tokens,
            "cache_creation_input_tokens": u.cache_creation_input_tokens,
            "cache_read_input_tokens": u.cache_read_input_tokens,
            "output_tokens": u.output_tokens,
        });
        let mut ev: Vec<Value> = vec![json!({
            "type": "message_start",
            "message": {"id": MESSAGE_ID, "type": "message", "role": "assistant", "model": model,
                        "content": [], "stop_reason": null, "stop_sequence": null, "usage": start_usage},
        })];
        let stop_reason = match &self.kind {
            Kind::ToolUse { name, input, .. } => {
                ev.push(json!({"type": "content_block_start", "index": 0,
                    "content_block": {"type": "tool_use", "id": TOOL_USE_ID, "name": name, "input": {}}}));
                ev.push(json!({"type": "ping"}));
                let mut pieces = vec![String::new()];
                pieces.extend(split_pieces(&input.to_string(), 3));
                for p in pieces {
                    ev.push(json!({"type": "content_block_delta", "index": 0,
                        "delta": {"type": "input_json_delta", "partial_json": p}}));
                }
                "tool_use"
            }
            Kind::Auto(text) | Kind::Message(text) | Kind::Stream(text) => {
                ev.push(json!({"type": "content_block_start", "index": 0,
                    "content_block": {"type": "text", "text": ""}}));
                ev.push(json!({"type": "ping"}));
                for p in split_pieces(text, 4) {
                    ev.push(json!({"type": "content_block_delta", "index": 0,
                        "delta": {"type": "text_delta", "text": p}}));
                }
                "end_turn"
            }
            Kind::Status { .. } | Kind::Error { .. } => return Vec::new(),
        };
        ev.push(json!({"type": "content_block_stop", "index": 0}));
        ev.push(json!({"type": "message_delta",
            "delta": {"stop_reason": stop_reason, "stop_sequence": null}, "usage": delta_usage}));
        ev.push(json!({"type": "message_stop"}));
        let mut out: Vec<Vec<u8>> = ev.iter().map(sse_event).collect();
        if let Some((n, error_type, message)) = &self.error_after {
            out.truncate(*n);
            out.push(sse_event(&json!({"type": "error",
                "error": {"type": error_type, "message": message}})));
        }
        out
    }

    /// The non-streaming JSON body this reply answers with for `model`.
    pub fn json_body(&self, model: &str) -> Vec<u8> {
        let model = self.model.as_deref().unwrap_or(model);
        let u = &self.usage;
        let usage = json!({
            "input_tokens": u.input_tokens,
            "cache_creation_input_tokens": u.cache_creation_input_tokens,
            "cache_read_input_tokens": u.cache_read_input_tokens,
            "cache_creation": {"ephemeral_5m_input_tokens": u.cache_creation_input_tokens, "ephemeral_1h_input_tokens": 0},
            "output_tokens": u.output_tokens,
            "service_tier": "standard",
        });
        let (content, stop_reason) = match &self.kind {
            Kind::Status { body, .. } => return body.clone(),
            Kind::Error {
                code,
                error_type,
                message,
            } => {
                return fake_formats::error_body(WireFormat::Claude, *code, error_type, message)
                    .to_string()
                    .into_bytes();
            }
            Kind::ToolUse { name, input, .. } => (
                json!([{"type": "tool_use", "id": TOOL_USE_ID, "name": name, "input": input}]),
                "tool_use",
            ),
            Kind::Auto(text) | Kind::Message(text) | Kind::Stream(text) => {
                (json!([{"type": "text", "text": text}]), "end_turn")
            }
        };
        json!({"id": MESSAGE_ID, "type": "message", "role": "assistant", "model": model,
               "content": content, "stop_reason": stop_reason, "stop_sequence": null, "usage": usage})
        .to_string()
        .into_bytes()
    }

    /// The body pieces ("events") sent for a request with this model and stream flag.
    fn pieces(&self, model: &str, request_stream: bool) -> Vec<Vec<u8>> {
        if self.is_stream(request_stream) {
            self.sse_events(model)
        } else {
            vec![self.json_body(model)]
        }
    }

    /// The exact body bytes a client receives (after de-chunking) when the request has this
    /// model and stream flag, including the effect of `drop_after_events`.
    pub fn body_bytes(&self, model: &str, request_stream: bool) -> Vec<u8> {
        self.body_bytes_for(&Target::claude(model, request_stream))
    }

    /// [`Reply::body_bytes`] for a request of any format.
    pub fn body_bytes_for(&self, target: &Target) -> Vec<u8> {
        let mut pieces = self.render(target).pieces;
        if let Some(n) = self.drop_after {
            pieces.truncate(n);
        }
        pieces.concat()
    }

    /// How this reply answers a request of `target` (status, content type, body pieces), before
    /// timing faults and `drop_after_events`. A Code Assist call's successful answer is wrapped
    /// as `{"response": …, "traceId"}`, each stream chunk alike.
    pub fn render(&self, target: &Target) -> Rendered {
        let mut r = self.render_plain(target);
        if target.code_assist && (200..300).contains(&r.code) {
            for piece in &mut r.pieces {
                *piece = code_assist_wrap(piece, r.is_sse);
            }
        }
        r
    }

    fn render_plain(&self, target: &Target) -> Rendered {
        let code = self.status_code();
        let json = |pieces| Rendered {
            code,
            content_type: "application/json".into(),
            pieces,
            is_sse: false,
        };
        if let Kind::Status {
            content_type, body, ..
        } = &self.kind
        {
            return Rendered {
                content_type: content_type.clone(),
                ..json(vec![body.clone()])
            };
        }
        if let Kind::Error {
            code,
            error_type,
            message,
        } = &self.kind
        {
            let body = fake_formats::error_body(target.format, *code, error_type, message);
            return json(vec![body.to_string().into_bytes()]);
        }
        let model = self.model.as_deref().unwrap_or(&target.model);
        let stream = self.is_stream(target.stream);
        if target.format == WireFormat::Claude {
            return Rendered {
                is_sse: stream,
                content_type: if stream {
                    "text/event-stream"
                } else {
                    "application/json"
                }
                .into(),
                ..json(self.pieces(model, target.stream))
            };
        }
        let content = self.content().expect("content reply");
        if !stream {
            let body = fake_formats::json_body(target.format, content, self.usage, model);
            return json(vec![body.to_string().into_bytes()]);
        }
        let err = self
            .error_after
            .as_ref()
            .map(|(n, error_type, message)| MidStreamError {
                after: *n,
                error_type,
                message,
            });
        let pieces = fake_formats::stream_pieces(target, content, self.usage, model, err);
        let is_sse = target.format != WireFormat::Gemini || target.sse;
        Rendered {
            is_sse,
            content_type: if is_sse {
                "text/event-stream"
            } else {
                "application/json"
            }
            .into(),
            ..json(pieces)
        }
    }
}

/// Wraps one rendered piece (a JSON body, or SSE `data:` lines) as Code Assist sends it.
fn code_assist_wrap(piece: &[u8], is_sse: bool) -> Vec<u8> {
    let wrap = |json: &str| format!(r#"{{"response":{json},"traceId":"fake-trace"}}"#);
    let text = String::from_utf8_lossy(piece);
    if !is_sse {
        return wrap(&text).into_bytes();
    }
    text.split_inclusive('\n')
        .map(|line| match line.strip_prefix("data: ") {
            Some(json) => format!("data: {}\n", wrap(json.trim_end())),
            None => line.to_string(),
        })
        .collect::<String>()
        .into_bytes()
}

/// A reply rendered for one request.
#[derive(Clone, Debug)]
pub struct Rendered {
    /// HTTP status.
    pub code: u16,
    /// `content-type` header.
    pub content_type: String,
    /// Body pieces: SSE events when `is_sse`, else the whole body (or a Gemini JSON array).
    pub pieces: Vec<Vec<u8>>,
    /// Whether the body is an SSE stream (sent chunked, event by event).
    pub is_sse: bool,
}

/// `event: TYPE\ndata: JSON\n\n`.
fn sse_event(v: &Value) -> Vec<u8> {
    let ty = v["type"].as_str().unwrap_or("message");
    format!("event: {ty}\ndata: {v}\n\n").into_bytes()
}

/// Splits `s` into up to `n` non-empty pieces at character boundaries (one piece when short).
pub(crate) fn split_pieces(s: &str, n: usize) -> Vec<String> {
    let chars: Vec<char> = s.chars().collect();
    if chars.is_empty() {
        return vec![String::new()];
    }
    let size = chars.len().div_ceil(n.max(1));
    chars.chunks(size).map(|c| c.iter().collect()).collect()
}

/// One request as the fake upstream received it.
#[derive(Clone, Debug)]
pub struct RecordedRequest {
    /// `GET`, `POST`, ...
    pub method: String,
    /// The request target, path and query (e.g. `/v1/messages?beta=true`).
    pub path: String,
    /// Headers in arrival order, names lower-cased.
    pub headers: Vec<(String, String)>,
    /// The body bytes (de-chunked).
    pub body: Bytes,
    /// The body parsed as JSON, when it is JSON.
    pub json: Option<Value>,
}

impl RecordedRequest {
    /// The first value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.as_str())
    }

    /// The path without the query string.
    pub fn path_only(&self) -> &str {
        self.path.split('?').next().unwrap_or("")
    }

    /// The query string (without `?`), if any.
    pub fn query(&self) -> Option<&str> {
        self.path.split_once('?').map(|(_, q)| q)
    }

    /// The format, model and stream options of this request when it is an inference request.
    pub fn target(&self) -> Option<Target> {
        Target::from_request(
            &self.method,
            self.path_only(),
            self.query(),
            self.json.as_ref(),
            DEFAULT_MODEL,
        )
    }
}

struct State {
    queue: Mutex<VecDeque<Reply>>,
    default: Mutex<Reply>,
    requests: Mutex<Vec<RecordedRequest>>,
    request_count: AtomicUsize,
    connections: AtomicUsize,
    recording: AtomicBool,
    count_tokens: Mutex<Option<u64>>,
    request_ids: AtomicU64,
    token_refreshes: AtomicUsize,
    token_status: Mutex<u16>,
}

/// A running fake Anthropic API. Dropping it stops the listener and every open connection.
pub struct FakeUpstream {
    addr: SocketAddr,
    state: Arc<State>,
    task: JoinHandle<()>,
}

impl Drop for FakeUpstream {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl FakeUpstream {
    /// Starts the fake on `127.0.0.1:0` (a free port), on the current tokio runtime.
    pub async fn start() -> FakeUpstream {
        FakeUpstream::start_on("127.0.0.1:0")
            .await
            .expect("bind the fake upstream")
    }

    /// Starts the fake on a given address (e.g. `127.0.0.1:18080` for a benchmark).
    pub async fn start_on(addr: &str) -> io::Result<FakeUpstream> {
        let listener = TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let state = Arc::new(State {
            queue: Mutex::new(VecDeque::new()),
            default: Mutex::new(Reply::default()),
            requests: Mutex::new(Vec::new()),
            request_count: AtomicUsize::new(0),
            connections: AtomicUsize::new(0),
            recording: AtomicBool::new(true),
            count_tokens: Mutex::new(None),
            request_ids: AtomicU64::new(0),
            token_refreshes: AtomicUsize::new(0),
            token_status: Mutex::new(200),
        });
        let st = state.clone();
        let task = tokio::spawn(async move {
            let mut conns = tokio::task::JoinSet::new();
            loop {
                tokio::select! {
                    accepted = listener.accept() => {
                        let Ok((stream, _)) = accepted else { continue };
                        let _ = stream.set_nodelay(true);
                        st.connections.fetch_add(1, Ordering::Relaxed);
                        let st = st.clone();
                        conns.spawn(async move {
                            let _ = serve_connection(stream, st).await;
                        });
                    }
                    Some(_) = conns.join_next(), if !conns.is_empty() => {}
                }
            }
        });
        Ok(FakeUpstream { addr, state, task })
    }

    /// `http://127.0.0.1:PORT` (no trailing slash, no `/v1`).
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The bound socket address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Queues a reply for the next `POST /v1/messages` (replies are consumed in order).
    pub fn push(&self, reply: Reply) {
        self.state.queue.lock().unwrap().push_back(reply);
    }

    /// The reply used when the queue is empty (initially [`Reply::default`]).
    pub fn set_default(&self, reply: Reply) {
        *self.state.default.lock().unwrap() = reply;
    }

    /// How many scripted replies are still queued.
    pub fn queued(&self) -> usize {
        self.state.queue.lock().unwrap().len()
    }

    /// The number `count_tokens` answers; `None` (the default) answers `max(1, body_len / 4)`.
    pub fn set_count_tokens(&self, n: Option<u64>) {
        *self.state.count_tokens.lock().unwrap() = n;
    }

    /// How many OAuth refreshes `POST /token` has answered (successfully or not).
    pub fn token_refreshes(&self) -> usize {
        self.state.token_refreshes.load(Ordering::Relaxed)
    }

    /// The status `POST /token` answers with (200 by default; anything else answers an
    /// `invalid_grant` error).
    pub fn set_token_status(&self, status: u16) {
        *self.state.token_status.lock().unwrap() = status;
    }

    /// Turns request recording on (default) or off; the count is kept either way.
    pub fn set_recording(&self, on: bool) {
        self.state.recording.store(on, Ordering::Relaxed);
    }

    /// Every recorded request so far, in arrival order.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.state.requests.lock().unwrap().clone()
    }

    /// The last recorded request, if any.
    pub fn last_request(&self) -> Option<RecordedRequest> {
        self.state.requests.lock().unwrap().last().cloned()
    }

    /// Forgets the recorded requests (the count is kept).
    pub fn clear_requests(&self) {
        self.state.requests.lock().unwrap().clear();
    }

    /// Number of requests received (on every route), recorded or not.
    pub fn request_count(&self) -> usize {
        self.state.request_count.load(Ordering::Relaxed)
    }

    /// Number of TCP connections accepted (shows whether clients reuse connections).
    pub fn connections(&self) -> usize {
        self.state.connections.load(Ordering::Relaxed)
    }

    /// Waits until at least `n` requests have arrived or `timeout` passes; returns whether
    /// they did.
    pub async fn wait_for_requests(&self, n: usize, timeout: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + timeout;
        while self.request_count() < n {
            if tokio::time::Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        true
    }

    /// The exact SSE body bytes the fake sends for `reply` as a stream answering `model`
    /// (what a client behind a transparent gateway must receive byte for byte).
    pub fn sse_bytes(reply: &Reply, model: &str) -> Vec<u8> {
        reply.body_bytes(model, true)
    }

    /// The exact body bytes the fake sends for `reply` answering a request of `target`.
    pub fn body_bytes_for(reply: &Reply, target: &Target) -> Vec<u8> {
        reply.body_bytes_for(target)
    }

    /// The recorded inference requests of one format (by path), in arrival order.
    pub fn requests_of(&self, format: WireFormat) -> Vec<RecordedRequest> {
        self.requests()
            .into_iter()
            .filter(|r| r.target().is_some_and(|t| t.format == format))
            .collect()
    }
}

/// Reads requests from one connection and answers them until it closes.
async fn serve_connection(mut stream: TcpStream, st: Arc<State>) -> io::Result<()> {
    let mut buf: Vec<u8> = Vec::with_capacity(8 * 1024);
    loop {
        let Some(req) = read_request(&mut stream, &mut buf).await? else {
            return Ok(());
        };
        st.request_count.fetch_add(1, Ordering::Relaxed);
        let keep_alive = req.keep_alive;
        let rec = req.recorded;
        let path = rec.path_only().to_string();
        let target = rec.target();
        let body_len = rec.body.len() as u64;
        let method = rec.method.clone();
        if st.recording.load(Ordering::Relaxed) {
            st.requests.lock().unwrap().push(rec);
        }
        let rid = st.request_ids.fetch_add(1, Ordering::Relaxed) + 1;
        let count = || {
            st.count_tokens
                .lock()
                .unwrap()
                .unwrap_or((body_len / 4).max(1))
        };
        let plain = Target::claude(DEFAULT_MODEL, false);
        let (reply, target) = match (method.as_str(), path.as_str(), target) {
            (_, _, Some(t)) => {
                let queued = st.queue.lock().unwrap().pop_front();
                let reply = queued.unwrap_or_else(|| st.default.lock().unwrap().clone());
                (reply, t)
            }
            ("POST", "/token", None) => {
                let n = st.token_refreshes.fetch_add(1, Ordering::Relaxed) + 1;
                let status = *st.token_status.lock().unwrap();
                let body = if status == 200 {
                    json!({"access_token": format!("ya29.fresh-{n}"), "expires_in": 3599,
                           "token_type": "Bearer", "scope": "https://www.googleapis.com/auth/cloud-platform"})
                } else {
                    json!({"error": "invalid_grant", "error_description": "Token has been expired or revoked."})
                };
                (Reply::status(status, body), plain)
            }
            ("POST", "/v1internal:countTokens", None) => {
                (Reply::status(200, json!({"totalTokens": count()})), plain)
            }
            ("POST", "/v1/messages/count_tokens", None) => {
                (Reply::status(200, json!({"input_tokens": count()})), plain)
            }
            ("POST", p, None)
                if fake_formats::gemini_model_action(p)
                    .is_some_and(|(_, a)| a == "countTokens") =>
            {
                (Reply::status(200, json!({"totalTokens": count()})), plain)
            }
            ("POST", "/v1/responses/compact" | "/responses/compact", None) => {
                // Codex remote compaction: scripted like the inference routes (use a raw reply).
                let queued = st.queue.lock().unwrap().pop_front();
                let reply = queued.unwrap_or_else(|| st.default.lock().unwrap().clone());
                (reply, plain)
            }
            ("GET", "/v1/models", None) => (Reply::status(200, models_body()), plain),
            ("GET", "/v1beta/models", None) => (Reply::status(200, gemini_models_body()), plain),
            _ => (Reply::error(404, "not_found_error", "Not found"), plain),
        };
        let open = write_reply(&mut stream, &reply, &target, keep_alive, rid).await?;
        if !open {
            return Ok(());
        }
    }
}

fn models_body() -> Value {
    let models = [
        ("claude-haiku-4-5", "Claude Haiku 4.5"),
        ("claude-opus-4-8", "Claude Opus 4.8"),
        ("claude-sonnet-4-5", "Claude Sonnet 4.5"),
    ];
    let data: Vec<Value> = models
        .iter()
        .map(|(id, name)| json!({"type": "model", "id": id, "display_name": name, "created_at": "2025-10-01T00:00:00Z"}))
        .collect();
    json!({"data": data, "has_more": false, "first_id": models[0].0, "last_id": models[2].0})
}

fn gemini_models_body() -> Value {
    let models: Vec<Value> = ["gemini-2.5-flash", "gemini-2.5-pro"]
        .iter()
        .map(|m| {
            json!({"name": format!("models/{m}"), "displayName": m,
                        "supportedGenerationMethods": ["generateContent", "countTokens"]})
        })
        .collect();
    json!({"models": models})
}

fn reason_phrase(code: u16) -> &'static str {
    match code {
        200 => "OK",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        413 => "Payload Too Large",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        529 => "Overloaded",
        _ => "Status",
    }
}

fn push_chunk(out: &mut Vec<u8>, piece: &[u8]) {
    out.extend_from_slice(format!("{:x}\r\n", piece.len()).as_bytes());
    out.extend_from_slice(piece);
    out.extend_from_slice(b"\r\n");
}

/// Writes one reply, applying its faults. Returns whether the connection stays open.
async fn write_reply(
    stream: &mut TcpStream,
    reply: &Reply,
    target: &Target,
    keep_alive: bool,
    request_id: u64,
) -> io::Result<bool> {
    if let Some(d) = reply.delay_first_byte {
        tokio::time::sleep(d).await;
    }
    let Rendered {
        code,
        content_type,
        pieces,
        is_sse,
    } = reply.render(target);
    let mut head = format!(
        "HTTP/1.1 {code} {}\r\ncontent-type: {content_type}\r\nrequest-id: req_fake_{request_id:08}\r\n",
        reason_phrase(code)
    );
    if is_sse {
        head.push_str("cache-control: no-cache\r\ntransfer-encoding: chunked\r\n");
    } else {
        let len: usize = pieces.iter().map(Vec::len).sum();
        head.push_str(&format!("content-length: {len}\r\n"));
    }
    for (k, v) in &reply.headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    if !keep_alive {
        head.push_str("connection: close\r\n");
    }
    head.push_str("\r\n");

    let frame = |out: &mut Vec<u8>, p: &[u8]| {
        if is_sse {
            push_chunk(out, p)
        } else {
            out.extend_from_slice(p)
        }
    };

    if !reply.has_timing_faults() {
        let mut out = head.into_bytes();
        for p in &pieces {
            frame(&mut out, p);
        }
        if is_sse {
            out.extend_from_slice(b"0\r\n\r\n");
        }
        stream.write_all(&out).await?;
        return Ok(keep_alive);
    }

    stream.write_all(head.as_bytes()).await?;
    stream.flush().await?;
    for (i, p) in pieces.iter().enumerate() {
        if reply.drop_after == Some(i) {
            return Ok(false);
        }
        if let Some((n, pause)) = reply.stall
            && n == i
        {
            tokio::time::sleep(pause).await;
        }
        if let Some(interval) = reply.drip
            && i > 0
        {
            tokio::time::sleep(interval).await;
        }
        let mut out = Vec::with_capacity(p.len() + 16);
        frame(&mut out, p);
        stream.write_all(&out).await?;
        stream.flush().await?;
    }
    if reply.drop_after.is_some_and(|n| n >= pieces.len()) {
        // Everything sent but the chunked terminator: still an unfinished body.
        return Ok(false);
    }
    if is_sse {
        stream.write_all(b"0\r\n\r\n").await?;
    }
    Ok(keep_alive)
}

struct ParsedRequest {
    recorded: RecordedRequest,
    keep_alive: bool,
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// Reads more bytes into `buf`; `Ok(false)` on a clean end of stream.
async fn fill(stream: &mut TcpStream, buf: &mut Vec<u8>) -> io::Result<bool> {
    let mut tmp = [0u8; 16 * 1024];
    let n = stream.read(&mut tmp).await?;
    buf.extend_from_slice(&tmp[..n]);
    Ok(n > 0)
}

fn bad(msg: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg.to_string())
}

/// Reads one HTTP/1.1 request (head and body, content-length or chunked). `None` when the peer
/// closed the connection between requests.
async fn read_request(
    stream: &mut TcpStream,
    buf: &mut Vec<u8>,
) -> io::Result<Option<ParsedRequest>> {
    let head_end = loop {
        if let Some(i) = find(buf, b"\r\n\r\n") {
            break i;
        }
        if buf.len() > MAX_HEAD {
            return Err(bad("request head too large"));
        }
        if !fill(stream, buf).await? {
            return if buf.is_empty() {
                Ok(None)
            } else {
                Err(bad("eof in request head"))
            };
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    buf.drain(..head_end + 4);
    let mut lines = head.split("\r\n");
    let request_line = lines.next().unwrap_or_default();
    let mut parts = request_line.split(' ');
    let method = parts.next().unwrap_or_default().to_string();
    let path = parts.next().unwrap_or("/").to_string();
    let version = parts.next().unwrap_or("HTTP/1.1");
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let get = |name: &str| {
        headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    let connection = get("connection").unwrap_or("").to_ascii_lowercase();
    let keep_alive = if version == "HTTP/1.0" {
        connection.contains("keep-alive")
    } else {
        !connection.contains("close")
    };
    let chunked =
        get("transfer-encoding").is_some_and(|v| v.to_ascii_lowercase().contains("chunked"));
    let body: Vec<u8> = if chunked {
        read_chunked(stream, buf).await?
    } else {
        let len: usize = get("content-length")
            .map(|v| v.parse().map_err(|_| bad("bad content-length")))
            .transpose()?
            .unwrap_or(0);
        while buf.len() < len {
            if !fill(stream, buf).await? {
                return Err(bad("eof in request body"));
            }
        }
        buf.drain(..len).collect()
    };
    let json = serde_json::from_slice(&body).ok();
    Ok(Some(ParsedRequest {
        recorded: RecordedRequest {
            method,
            path,
            headers,
            body: Bytes::from(body),
            json,
        },
        keep_alive,
    }))
}

async fn read_chunked(stream: &mut TcpStream, buf: &mut Vec<u8>) -> io::Result<Vec<u8>> {
    let mut body = Vec::new();
    loop {
        let line_end = loop {
            if let Some(i) = find(buf, b"\r\n") {
                break i;
            }
            if !fill(stream, buf).await? {
                return Err(bad("eof in chunk size"));
            }
        };
        let line = String::from_utf8_lossy(&buf[..line_end]).into_owned();
        buf.drain(..line_end + 2);
        let size_hex = line.split(';').next().unwrap_or("").trim();
        let size = usize::from_str_radix(size_hex, 16).map_err(|_| bad("bad chunk size"))?;
        if size == 0 {
            // Trailers, up to an empty line.
            loop {
                let end = loop {
                    if let Some(i) = find(buf, b"\r\n") {
                        break i;
                    }
                    if !fill(stream, buf).await? {
                        return Err(bad("eof in trailers"));
                    }
                };
                buf.drain(..end + 2);
                if end == 0 {
                    return Ok(body);
                }
            }
        }
        while buf.len() < size + 2 {
            if !fill(stream, buf).await? {
                return Err(bad("eof in chunk"));
            }
        }
        body.extend_from_slice(&buf[..size]);
        buf.drain(..size + 2);
    }
}
