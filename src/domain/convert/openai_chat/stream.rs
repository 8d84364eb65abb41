//! Chat Completions streams ⇄ Claude streams.

use std::collections::HashMap;

use serde_json::{Value, json};

use super::claude_stream::{ClaudeEv, ClaudeWriter, claude_error_type, read_claude};
use super::shared::*;
use crate::domain::convert::{ConvertError, OutEvent, StreamConverter};
use crate::domain::sse::SseEvent;

const F: &str = "openai chat";

#[derive(Debug)]
struct Tool {
    id: String,
    name: String,
    args: String,
    started: bool,
    closed: bool,
}

fn complete_json(s: &str) -> bool {
    !s.trim().is_empty() && serde_json::from_str::<serde::de::IgnoredAny>(s).is_ok()
}

/// Chat Completions chunks (upstream) → Claude events (client).
///
/// Tool calls are written one block at a time. A call stays open until its arguments form
/// complete JSON; pieces of later calls that arrive meanwhile (providers that interleave
/// parallel calls) are queued and written when the earlier call completes, or at
/// `finish_reason`. The stop event is held until `[DONE]` (or the end of the body) because the
/// usage chunk follows the `finish_reason` chunk.
#[derive(Debug, Default)]
pub struct StreamToClaude {
    w: ClaudeWriter,
    tools: Vec<Tool>,
    by_index: HashMap<u64, usize>,
    active: Option<usize>,
    pending_finish: Option<&'static str>,
    refusal: bool,
    msg_id: String,
}

impl StreamToClaude {
    /// A converter for one stream.
    pub fn new() -> Self {
        Self::default()
    }

    fn start_tool(&mut self, out: &mut Vec<OutEvent>, k: usize) {
        let Some(t) = self.tools.get_mut(k) else {
            return;
        };
        t.started = true;
        self.w.tool_start(out, &t.id, &t.name);
        self.w.tool_args(out, &t.args);
        self.active = Some(k);
    }

    fn close_active(&mut self, out: &mut Vec<OutEvent>) {
        if let Some(k) = self.active.take() {
            if let Some(t) = self.tools.get_mut(k) {
                t.closed = true;
            }
            self.w.close(out);
        }
    }

    /// While the active call is complete and later calls are queued, move on to the next.
    fn advance(&mut self, out: &mut Vec<OutEvent>) {
        while let Some(k) = self.active {
            let Some(next) = self.tools.iter().position(|t| !t.started) else {
                return;
            };
            if !self.tools.get(k).is_some_and(|t| complete_json(&t.args)) {
                return;
            }
            self.close_active(out);
            self.start_tool(out, next);
        }
    }

    /// Writes every queued call and closes all tool blocks.
    fn flush_tools(&mut self, out: &mut Vec<OutEvent>) {
        self.close_active(out);
        while let Some(next) = self.tools.iter().position(|t| !t.started) {
            self.start_tool(out, next);
            self.close_active(out);
        }
    }

    fn on_tool_call(
        &mut self,
        out: &mut Vec<OutEvent>,
        pos: usize,
        tc: &Value,
    ) -> Result<(), ConvertError> {
        let idx = tc
            .get("index")
            .and_then(Value::as_u64)
            .unwrap_or(pos as u64);
        let piece = tc
            .pointer("/function/arguments")
            .and_then(Value::as_str)
            .unwrap_or("");
        let k = match self.by_index.get(&idx) {
            Some(k) => *k,
            None => {
                let raw = tc
                    .get("id")
                    .and_then(Value::as_str)
                    .filter(|s| !s.is_empty())
                    .map(str::to_string)
                    .unwrap_or_else(|| synthetic_call_id(&self.msg_id, idx));
                let name = tc
                    .pointer("/function/name")
                    .and_then(Value::as_str)
                    .unwrap_or("");
                let k = self.tools.len();
                self.tools.push(Tool {
                    id: claude_tool_id(&raw),
                    name: name.to_string(),
                    args: piece.to_string(),
                    started: false,
                    closed: false,
                });
                self.by_index.insert(idx, k);
                match self.active {
                    None => self.start_tool(out, k),
                    Some(_) => self.advance(out),
                }
                return Ok(());
            }
        };
        if piece.is_empty() {
            return Ok(());
        }
        let Some(t) = self.tools.get_mut(k) else {
            return Ok(());
        };
        if t.closed {
            return Err(invalid(
                F,
                format!(
                    "arguments for tool call {} arrived after it was complete",
                    t.id
                ),
            ));
        }
        t.args.push_str(piece);
        if self.active == Some(k) {
            self.w.tool_args(out, piece);
            self.advance(out);
        }
        Ok(())
    }

    fn on_chunk(&mut self, v: &Value, out: &mut Vec<OutEvent>) -> Result<(), ConvertError> {
        if let Some(e) = v.get("error").filter(|e| !e.is_null()) {
            let code = e
                .get("code")
                .and_then(Value::as_str)
                .or_else(|| e.get("type").and_then(Value::as_str))
                .unwrap_or("");
            let msg = e
                .get("message")
                .and_then(Value::as_str)
                .unwrap_or("upstream error");
            self.w.error(out, claude_error_type(code), msg);
            return Ok(());
        }
        if !self.w.started() {
            self.msg_id = v
                .get("id")
                .and_then(Value::as_str)
                .unwrap_or("chatcmpl")
                .to_string();
            let model = v.get("model").and_then(Value::as_str).unwrap_or("");
            let id = self.msg_id.clone();
            self.w.start(out, &id, model);
        }
        if let Some(u) = v.get("usage").filter(|u| u.is_object()) {
            self.w.usage = Some(Tokens::from_openai(u, true));
        }
        let Some(choice) = v
            .get("choices")
            .and_then(Value::as_array)
            .and_then(|c| c.first())
        else {
            return Ok(());
        };
        let delta = choice.get("delta").unwrap_or(&Value::Null);
        if let Some(r) = delta
            .get("reasoning_content")
            .or_else(|| delta.get("reasoning"))
            .and_then(Value::as_str)
            .filter(|r| !r.is_empty())
        {
            self.flush_tools(out);
            self.w.thinking(out, r);
        }
        for key in ["content", "refusal"] {
            if let Some(t) = delta
                .get(key)
                .and_then(Value::as_str)
                .filter(|t| !t.is_empty())
            {
                if self.w.thinking_open() {
                    self.w.signature(out, ENVELOPE_OPENAI);
                }
                self.flush_tools(out);
                self.w.text(out, t);
                self.refusal |= key == "refusal";
            }
        }
        if let Some(calls) = delta.get("tool_calls").and_then(Value::as_array) {
            if self.w.thinking_open() {
                self.w.signature(out, ENVELOPE_OPENAI);
            }
            for (pos, tc) in calls.iter().enumerate() {
                self.on_tool_call(out, pos, tc)?;
            }
        }
        if let Some(r) = choice.get("finish_reason").and_then(Value::as_str) {
            if self.w.thinking_open() {
                self.w.signature(out, ENVELOPE_OPENAI);
            }
            self.flush_tools(out);
            self.w.close(out);
            let stop = chat_finish_to_claude(r, !self.tools.is_empty());
            self.pending_finish = Some(if self.refusal { "refusal" } else { stop });
        }
        Ok(())
    }

    fn end(&mut self, out: &mut Vec<OutEvent>) {
        match self.pending_finish {
            Some(stop) => self.w.finish(out, stop),
            None => self.w.error(
                out,
                "api_error",
                "upstream stream ended before finish_reason",
            ),
        }
    }
}

impl StreamConverter for StreamToClaude {
    fn push(&mut self, event: &SseEvent) -> Result<Vec<OutEvent>, ConvertError> {
        let mut out = Vec::new();
        if self.w.ended {
            return Ok(out);
        }
        let data = event.data.trim();
        if data.is_empty() {
            return Ok(out);
        }
        if data.starts_with("[DONE]") {
            self.end(&mut out);
            return Ok(out);
        }
        let v: Value = serde_json::from_str(data)
            .map_err(|e| invalid(F, format!("chunk is not JSON: {e}")))?;
        if !v.is_object() {
            return Err(invalid(F, "chunk is not an object"));
        }
        self.on_chunk(&v, &mut out)?;
        Ok(out)
    }

    fn finish(&mut self) -> Vec<OutEvent> {
        let mut out = Vec::new();
        if !self.w.ended {
            self.end(&mut out);
        }
        out
    }

    fn error(&mut self, message: &str) -> Vec<OutEvent> {
        let mut out = Vec::new();
        self.w.error(&mut out, "api_error", message);
        out
    }
}

/// Claude events (upstream) → Chat Completions chunks (client).
#[derive(Debug, Default)]
pub struct StreamFromClaude {
    include_usage: bool,
    reasoning: bool,
    created: i64,
    id: String,
    model: String,
    started: bool,
    tool_count: u64,
    /// Chat index and whether arguments were seen, for the open tool block.
    cur_tool: Option<(u64, bool)>,
    in_thinking: bool,
    stop: Option<String>,
    usage: Tokens,
    done: bool,
}

impl StreamFromClaude {
    /// A converter for one stream; `include_usage` is the client's
    /// `stream_options.include_usage`.
    pub fn new(include_usage: bool) -> Self {
        Self {
            include_usage,
            ..Self::default()
        }
    }

    /// Sets the `created` timestamp (seconds) written in every chunk (default 0).
    pub fn with_created(mut self, created: i64) -> Self {
        self.created = created;
        self
    }

    /// Writes Claude thinking as the non-standard `delta.reasoning_content` (off by default:
    /// thinking is dropped).
    pub fn with_reasoning_content(mut self, on: bool) -> Self {
        self.reasoning = on;
        self
    }

    fn chunk(&self, delta: Value, finish: Option<&str>) -> OutEvent {
        let mut c = json!({"id": self.id, "object": "chat.completion.chunk", "created": self.created,
            "model": self.model, "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]});
        if self.include_usage {
            c["usage"] = Value::Null;
        }
        OutEvent::data(&c)
    }

    fn start(&mut self, out: &mut Vec<OutEvent>, id: &str, model: &str) {
        if self.started {
            return;
        }
        self.started = true;
        self.id = format!("chatcmpl-{id}");
        self.model = model.to_string();
        out.push(self.chunk(json!({"role": "assistant", "content": ""}), None));
    }

    fn error_chunk(&mut self, out: &mut Vec<OutEvent>, etype: &str, message: &str) {
        if self.done {
            return;
        }
        self.done = true;
        let body = openai_error(etype, message);
        out.push(OutEvent::data(&body));
    }
}

fn openai_error(etype: &str, message: &str) -> Value {
    let status = match etype {
        "invalid_request_error" => 400,
        "authentication_error" => 401,
        "permission_error" => 403,
        "not_found_error" => 404,
        "rate_limit_error" => 429,
        "overloaded_error" => 529,
        "timeout_error" => 504,
        _ => 500,
    };
    super::claude_stream::openai_error_from_claude(
        status,
        &json!({"error": {"type": etype, "message": message}}),
    )
}

impl StreamConverter for StreamFromClaude {
    fn push(&mut self, event: &SseEvent) -> Result<Vec<OutEvent>, ConvertError> {
        let mut out = Vec::new();
        if self.done {
            return Ok(out);
        }
        match read_claude(event)? {
            ClaudeEv::Start { id, model, usage } => {
                self.usage.merge_claude(&usage);
                self.start(&mut out, &id, &model);
            }
            ClaudeEv::BlockStart { block } => {
                self.start(&mut out, "msg", "");
                self.in_thinking = false;
                match block_type(&block) {
                    "tool_use" => {
                        let n = self.tool_count;
                        self.tool_count += 1;
                        self.cur_tool = Some((n, false));
                        out.push(self.chunk(
                            json!({"tool_calls": [{"index": n, "id": block.get("id").cloned().unwrap_or(Value::Null),
                                "type": "function", "function": {"name": block.get("name").cloned().unwrap_or(Value::Null), "arguments": ""}}]}),
                            None,
                        ));
                    }
                    "text" => {
                        if let Some(t) = block
                            .get("text")
                            .and_then(Value::as_str)
                            .filter(|t| !t.is_empty())
                        {
                            out.push(self.chunk(json!({"content": t}), None));
                        }
                    }
                    "thinking" => self.in_thinking = true,
                    _ => {}
                }
            }
            ClaudeEv::Delta { delta } => {
                match block_type(&delta) {
                    "text_delta" => {
                        if let Some(t) = delta
                            .get("text")
                            .and_then(Value::as_str)
                            .filter(|t| !t.is_empty())
                        {
                            out.push(self.chunk(json!({"content": t}), None));
                        }
                    }
                    "thinking_delta" if self.reasoning && self.in_thinking => {
                        if let Some(t) = delta
                            .get("thinking")
                            .and_then(Value::as_str)
                            .filter(|t| !t.is_empty())
                        {
                            out.push(self.chunk(json!({"reasoning_content": t}), None));
                        }
                    }
                    "input_json_delta" => {
                        let piece = delta
                            .get("partial_json")
                            .and_then(Value::as_str)
                            .unwrap_or("");
                        if let Some((n, seen)) = self.cur_tool.as_mut()
                            && !piece.is_empty()
                        {
                            *seen = true;
                            let n = *n;
                            out.push(self.chunk(json!({"tool_calls": [{"index": n, "function": {"arguments": piece}}]}), None));
                        }
                    }
                    _ => {}
                }
            }
            ClaudeEv::BlockStop => {
                if let Some((n, seen)) = self.cur_tool.take()
                    && !seen
                {
                    out.push(self.chunk(
                        json!({"tool_calls": [{"index": n, "function": {"arguments": "{}"}}]}),
                        None,
                    ));
                }
                self.in_thinking = false;
            }
            ClaudeEv::MessageDelta { stop_reason, usage } => {
                if let Some(s) = stop_reason {
                    self.stop = Some(s);
                }
                if let Some(u) = usage {
                    self.usage.merge_claude(&u);
                }
            }
            ClaudeEv::Stop => {
                self.start(&mut out, "msg", "");
                let stop = self.stop.as_deref().unwrap_or("end_turn");
                let mut fr = claude_stop_to_chat(stop);
                if stop == "tool_use" && self.tool_count == 0 {
                    fr = "stop";
                }
                out.push(self.chunk(json!({}), Some(fr)));
                if self.include_usage {
                    out.push(OutEvent::data(&json!({"id": self.id, "object": "chat.completion.chunk",
                        "created": self.created, "model": self.model, "choices": [], "usage": self.usage.to_chat()})));
                }
                out.push(OutEvent {
                    event: None,
                    data: "[DONE]".into(),
                });
                self.done = true;
            }
            ClaudeEv::Error { etype, message } => self.error_chunk(&mut out, &etype, &message),
            ClaudeEv::Ignore => {}
        }
        Ok(out)
    }

    fn finish(&mut self) -> Vec<OutEvent> {
        let mut out = Vec::new();
        self.error_chunk(
            &mut out,
            "api_error",
            "upstream stream ended before message_stop",
        );
        out
    }

    fn error(&mut self, message: &str) -> Vec<OutEvent> {
        let mut out = Vec::new();
        self.error_chunk(&mut out, "api_error", message);
        out
    }
}
