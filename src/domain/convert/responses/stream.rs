//! Responses API streams ⇄ Claude streams.

use std::collections::HashMap;

use serde_json::{Value, json};

use super::super::openai_chat::shared::*;
use super::super::openai_chat::{ClaudeEv, ClaudeWriter, claude_error_type, read_claude};
use super::ResponsesContext;
use super::response::{
    call_item, openai_reasoning_signature, reasoning_item, status_from_claude, stop_to_claude,
};
use crate::domain::convert::{ConvertError, OutEvent, StreamConverter};
use crate::domain::sse::SseEvent;

const F: &str = "openai responses";

#[derive(Debug, Default)]
struct CallState {
    args: String,
    custom: bool,
}

/// Responses events (upstream) → Claude events (client). Claude block indexes are counted
/// independently of `output_index`; an empty reasoning item produces no block unless it
/// carries `encrypted_content` (then an empty thinking block carries it as its signature, so
/// the reasoning can be replayed on the next turn).
#[derive(Debug, Default)]
pub struct StreamToClaude {
    w: ClaudeWriter,
    calls: HashMap<u64, CallState>,
    saw_call: bool,
    refusal: bool,
}

impl StreamToClaude {
    /// A converter for one stream.
    pub fn new() -> Self {
        Self::default()
    }

    fn ensure_started(&mut self, out: &mut Vec<OutEvent>) {
        if !self.w.started() {
            self.w.start(out, "resp", "");
        }
    }

    fn terminal(&mut self, v: &Value, out: &mut Vec<OutEvent>, status: &str) {
        self.ensure_started(out);
        if let Some(u) = v.pointer("/response/usage").filter(|u| u.is_object()) {
            self.w.usage = Some(Tokens::from_openai(u, false));
        }
        let reason = v
            .pointer("/response/incomplete_details/reason")
            .and_then(Value::as_str);
        let stop = stop_to_claude(status, reason, self.saw_call, self.refusal);
        self.w.finish(out, stop);
    }

    fn on_event(
        &mut self,
        ty: &str,
        v: &Value,
        out: &mut Vec<OutEvent>,
    ) -> Result<(), ConvertError> {
        let oi = v.get("output_index").and_then(Value::as_u64).unwrap_or(0);
        let s = |k: &str| v.get(k).and_then(Value::as_str).unwrap_or("");
        match ty {
            "response.created" => {
                let id = v
                    .pointer("/response/id")
                    .and_then(Value::as_str)
                    .unwrap_or("resp");
                let model = v
                    .pointer("/response/model")
                    .and_then(Value::as_str)
                    .unwrap_or("");
                self.w.start(out, id, model);
            }
            "response.output_item.added" => {
                self.ensure_started(out);
                let item = v
                    .get("item")
                    .ok_or_else(|| invalid(F, "output_item.added without item"))?;
                let ity = item.get("type").and_then(Value::as_str).unwrap_or("");
                if ity == "function_call" || ity == "custom_tool_call" {
                    let raw = item.get("call_id").and_then(Value::as_str).unwrap_or("");
                    let id = if raw.is_empty() {
                        synthetic_call_id("resp", oi)
                    } else {
                        claude_tool_id(raw)
                    };
                    let name = item.get("name").and_then(Value::as_str).unwrap_or("");
                    let name = match item.get("namespace").and_then(Value::as_str) {
                        Some(ns) if !ns.is_empty() => format!("{ns}__{name}"),
                        _ => name.to_string(),
                    };
                    self.w.tool_start(out, &id, &name);
                    self.saw_call = true;
                    self.calls.insert(
                        oi,
                        CallState {
                            args: String::new(),
                            custom: ity == "custom_tool_call",
                        },
                    );
                }
            }
            "response.reasoning_summary_part.added"
                if v.get("summary_index").and_then(Value::as_u64).unwrap_or(0) > 0
                    && self.w.thinking_open() =>
            {
                self.w.thinking(out, "\n\n");
            }
            "response.reasoning_summary_text.delta" | "response.reasoning_text.delta" => {
                self.ensure_started(out);
                self.w.thinking(out, s("delta"));
            }
            "response.output_text.delta" | "response.refusal.delta" => {
                self.ensure_started(out);
                if self.w.thinking_open() {
                    self.w.close(out);
                }
                self.w.text(out, s("delta"));
                self.refusal |= ty == "response.refusal.delta" && !s("delta").is_empty();
            }
            "response.function_call_arguments.delta" | "response.custom_tool_call_input.delta" => {
                if let Some(c) = self.calls.get_mut(&oi) {
                    c.args.push_str(s("delta"));
                    if !c.custom {
                        self.w.tool_args(out, s("delta"));
                    }
                }
            }
            "response.function_call_arguments.done" => {
                self.args_fallback(oi, v.get("arguments"), out)
            }
            "response.output_item.done" => {
                let item = v
                    .get("item")
                    .ok_or_else(|| invalid(F, "output_item.done without item"))?;
                match item.get("type").and_then(Value::as_str).unwrap_or("") {
                    "function_call" => {
                        self.args_fallback(oi, item.get("arguments"), out);
                        self.calls.remove(&oi);
                        self.w.close(out);
                    }
                    "custom_tool_call" => {
                        if let Some(c) = self.calls.remove(&oi) {
                            let input = item
                                .get("input")
                                .and_then(Value::as_str)
                                .map(str::to_string)
                                .unwrap_or(c.args);
                            self.w.tool_args(out, &json!({"input": input}).to_string());
                        }
                        self.w.close(out);
                    }
                    "reasoning" => {
                        if item.get("encrypted_content").is_some_and(Value::is_string) {
                            self.w.signature(out, &openai_reasoning_signature(item));
                        } else {
                            self.w.close(out);
                        }
                    }
                    "message" => self.w.close(out),
                    _ => {}
                }
            }
            "response.completed" => self.terminal(v, out, "completed"),
            "response.incomplete" => self.terminal(v, out, "incomplete"),
            "response.failed" => {
                let code = v
                    .pointer("/response/error/code")
                    .and_then(Value::as_str)
                    .unwrap_or("server_error");
                let msg = v
                    .pointer("/response/error/message")
                    .and_then(Value::as_str)
                    .unwrap_or("response failed");
                self.w.error(out, claude_error_type(code), msg);
            }
            "error" => {
                let code = v
                    .get("code")
                    .and_then(Value::as_str)
                    .unwrap_or("server_error");
                self.w.error(
                    out,
                    claude_error_type(code),
                    v.get("message")
                        .and_then(Value::as_str)
                        .unwrap_or("upstream error"),
                );
            }
            _ => {}
        }
        Ok(())
    }

    /// Arguments from a `.done` event or the finished item: everything when no delta was
    /// seen, the remainder when the deltas were a strict prefix.
    fn args_fallback(&mut self, oi: u64, full: Option<&Value>, out: &mut Vec<OutEvent>) {
        let Some(c) = self.calls.get_mut(&oi) else {
            return;
        };
        let full = match full {
            Some(Value::String(s)) => s.clone(),
            Some(o @ Value::Object(_)) => o.to_string(),
            _ => return,
        };
        // `{}` for a call without arguments: the Claude client keeps `input: {}` anyway.
        if c.custom || full.len() <= c.args.len() || (c.args.is_empty() && full.trim() == "{}") {
            return;
        }
        if let Some(rest) = full.strip_prefix(c.args.as_str()) {
            let rest = rest.to_string();
            c.args = full;
            self.w.tool_args(out, &rest);
        }
    }
}

impl StreamConverter for StreamToClaude {
    fn push(&mut self, event: &SseEvent) -> Result<Vec<OutEvent>, ConvertError> {
        let mut out = Vec::new();
        let data = event.data.trim();
        if self.w.ended || data.is_empty() || data == "[DONE]" {
            return Ok(out);
        }
        let v: Value = serde_json::from_str(data)
            .map_err(|e| invalid(F, format!("event is not JSON: {e}")))?;
        if !v.is_object() {
            return Err(invalid(F, "event is not an object"));
        }
        let ty = v
            .get("type")
            .and_then(Value::as_str)
            .or(event.event.as_deref())
            .unwrap_or("")
            .to_string();
        self.on_event(&ty, &v, &mut out)?;
        Ok(out)
    }

    fn finish(&mut self) -> Vec<OutEvent> {
        let mut out = Vec::new();
        self.w.error(
            &mut out,
            "api_error",
            "upstream stream ended before response.completed",
        );
        out
    }

    fn error(&mut self, message: &str) -> Vec<OutEvent> {
        let mut out = Vec::new();
        self.w.error(&mut out, "api_error", message);
        out
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Text,
    Thinking,
    Tool,
    Skip,
}

#[derive(Debug)]
struct Cur {
    kind: Kind,
    output_index: usize,
    item_id: String,
    text: String,
    sig: String,
    call_id: Value,
    name: String,
}

/// Claude events (upstream) → Responses events (client): `response.created`,
/// `response.in_progress`, one output item per Claude block with its added/delta/done events,
/// then `response.completed` (or `.incomplete`) with the whole output and usage, or
/// `response.failed` on an upstream error or truncation.
#[derive(Debug, Default)]
pub struct StreamFromClaude {
    ctx: ResponsesContext,
    created_at: i64,
    seq: u64,
    msg_id: String,
    model: String,
    started: bool,
    blocks: usize,
    output: Vec<Value>,
    cur: Option<Cur>,
    usage: Tokens,
    stop: Option<String>,
    done: bool,
}

impl StreamFromClaude {
    /// A converter for one stream (no tool context, `created_at` 0).
    pub fn new() -> Self {
        Self::default()
    }

    /// A converter that restores namespaced and custom tool calls from the client's request
    /// context and writes `created_at` (seconds).
    pub fn with_context(ctx: ResponsesContext, created_at: i64) -> Self {
        Self {
            ctx,
            created_at,
            ..Self::default()
        }
    }

    fn emit(&mut self, out: &mut Vec<OutEvent>, ty: &str, mut payload: Value) {
        payload["type"] = json!(ty);
        payload["sequence_number"] = json!(self.seq);
        self.seq += 1;
        out.push(OutEvent::named(ty, &payload));
    }

    fn response(&self, status: &str) -> Value {
        json!({"id": format!("resp_{}", self.msg_id), "object": "response", "created_at": self.created_at,
            "status": status, "model": self.model, "output": self.output, "parallel_tool_calls": true,
            "tool_choice": "auto", "tools": [], "usage": null, "error": null, "incomplete_details": null})
    }

    fn start(&mut self, out: &mut Vec<OutEvent>, id: &str, model: &str) {
        if self.started {
            return;
        }
        self.started = true;
        self.msg_id = id.to_string();
        self.model = model.to_string();
        let r = self.response("in_progress");
        self.emit(out, "response.created", json!({"response": r}));
        self.emit(out, "response.in_progress", json!({"response": r}));
    }

    fn block_start(&mut self, out: &mut Vec<OutEvent>, block: &Value) {
        self.block_stop(out);
        let n = self.blocks;
        self.blocks += 1;
        let oi = self.output.len();
        let mid = self.msg_id.clone();
        let mut cur = Cur {
            kind: Kind::Skip,
            output_index: oi,
            item_id: String::new(),
            text: String::new(),
            sig: String::new(),
            call_id: Value::Null,
            name: String::new(),
        };
        match block_type(block) {
            "text" => {
                cur.kind = Kind::Text;
                cur.item_id = format!("msg_{mid}_{n}");
                let item = json!({"type": "message", "id": cur.item_id, "status": "in_progress", "role": "assistant", "content": []});
                self.emit(
                    out,
                    "response.output_item.added",
                    json!({"output_index": oi, "item": item}),
                );
                self.emit(out, "response.content_part.added", json!({"item_id": cur.item_id, "output_index": oi,
                    "content_index": 0, "part": {"type": "output_text", "text": "", "annotations": []}}));
            }
            "thinking" => {
                cur.kind = Kind::Thinking;
                cur.item_id = format!("rs_{mid}_{n}");
                self.emit(
                    out,
                    "response.output_item.added",
                    json!({"output_index": oi,
                    "item": {"type": "reasoning", "id": cur.item_id, "summary": []}}),
                );
                self.emit(
                    out,
                    "response.reasoning_summary_part.added",
                    json!({"item_id": cur.item_id, "output_index": oi,
                    "summary_index": 0, "part": {"type": "summary_text", "text": ""}}),
                );
            }
            "redacted_thinking" => {
                let item = reasoning_item(
                    &format!("rs_{mid}_{n}"),
                    "",
                    &json!({"redacted": block.get("data").cloned().unwrap_or(json!(""))}),
                );
                self.emit(
                    out,
                    "response.output_item.added",
                    json!({"output_index": oi,
                    "item": {"type": "reasoning", "id": item["id"], "summary": []}}),
                );
                self.emit(
                    out,
                    "response.output_item.done",
                    json!({"output_index": oi, "item": item}),
                );
                self.output.push(item);
                return;
            }
            "tool_use" => {
                cur.kind = Kind::Tool;
                cur.item_id = format!("fc_{mid}_{n}");
                cur.call_id = block.get("id").cloned().unwrap_or(Value::Null);
                cur.name = block
                    .get("name")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_string();
                let item = call_item(
                    &cur.item_id,
                    &cur.call_id,
                    &cur.name,
                    "",
                    &self.ctx,
                    "in_progress",
                );
                self.emit(
                    out,
                    "response.output_item.added",
                    json!({"output_index": oi, "item": item}),
                );
            }
            _ => {}
        }
        let initial = block
            .get("text")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        self.cur = Some(cur);
        if !initial.is_empty() {
            self.text_delta(out, &initial);
        }
    }

    fn text_delta(&mut self, out: &mut Vec<OutEvent>, t: &str) {
        let Some(c) = self.cur.as_mut() else { return };
        if t.is_empty() {
            return;
        }
        c.text.push_str(t);
        let (id, oi, kind) = (c.item_id.clone(), c.output_index, c.kind);
        match kind {
            Kind::Text => self.emit(
                out,
                "response.output_text.delta",
                json!({"item_id": id, "output_index": oi,
                "content_index": 0, "delta": t, "logprobs": []}),
            ),
            Kind::Thinking => self.emit(
                out,
                "response.reasoning_summary_text.delta",
                json!({"item_id": id,
                "output_index": oi, "summary_index": 0, "delta": t}),
            ),
            Kind::Tool => {
                if !self.ctx.custom.contains(
                    &self
                        .cur
                        .as_ref()
                        .map(|c| c.name.clone())
                        .unwrap_or_default(),
                ) {
                    self.emit(
                        out,
                        "response.function_call_arguments.delta",
                        json!({"item_id": id, "output_index": oi, "delta": t}),
                    );
                }
            }
            Kind::Skip => {}
        }
    }

    fn block_stop(&mut self, out: &mut Vec<OutEvent>) {
        let Some(c) = self.cur.take() else { return };
        let (id, oi) = (c.item_id.clone(), c.output_index);
        let item = match c.kind {
            Kind::Skip => return,
            Kind::Text => {
                let part = json!({"type": "output_text", "text": c.text, "annotations": []});
                self.emit(out, "response.output_text.done", json!({"item_id": id, "output_index": oi, "content_index": 0, "text": c.text, "logprobs": []}));
                self.emit(
                    out,
                    "response.content_part.done",
                    json!({"item_id": id, "output_index": oi, "content_index": 0, "part": part}),
                );
                json!({"type": "message", "id": id, "status": "completed", "role": "assistant", "content": [part]})
            }
            Kind::Thinking => {
                self.emit(
                    out,
                    "response.reasoning_summary_text.done",
                    json!({"item_id": id, "output_index": oi, "summary_index": 0, "text": c.text}),
                );
                self.emit(
                    out,
                    "response.reasoning_summary_part.done",
                    json!({"item_id": id, "output_index": oi, "summary_index": 0,
                    "part": {"type": "summary_text", "text": c.text}}),
                );
                reasoning_item(
                    &id,
                    &c.text,
                    &json!({"thinking": c.text, "signature": c.sig}),
                )
            }
            Kind::Tool => {
                let args = if c.text.trim().is_empty() {
                    "{}".to_string()
                } else {
                    c.text.clone()
                };
                if !self.ctx.custom.contains(&c.name) {
                    self.emit(out, "response.function_call_arguments.done", json!({"item_id": id, "output_index": oi, "name": c.name, "arguments": args}));
                }
                call_item(&id, &c.call_id, &c.name, &args, &self.ctx, "completed")
            }
        };
        self.emit(
            out,
            "response.output_item.done",
            json!({"output_index": oi, "item": item}),
        );
        self.output.push(item);
    }

    fn fail(&mut self, out: &mut Vec<OutEvent>, etype: &str, message: &str) {
        if self.done {
            return;
        }
        self.done = true;
        let code = match etype {
            "rate_limit_error" => "rate_limit_exceeded",
            "billing_error" => "insufficient_quota",
            "invalid_request_error" => "invalid_prompt",
            _ => "server_error",
        };
        self.emit(
            out,
            "error",
            json!({"code": code, "message": message, "param": null}),
        );
        let mut r = self.response("failed");
        r["error"] = json!({"code": code, "message": message});
        r["usage"] = self.usage.to_responses();
        self.emit(out, "response.failed", json!({"response": r}));
    }
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
                self.block_start(&mut out, &block);
            }
            ClaudeEv::Delta { delta } => match block_type(&delta) {
                "text_delta" => self.text_delta(
                    &mut out,
                    delta.get("text").and_then(Value::as_str).unwrap_or(""),
                ),
                "thinking_delta" => self.text_delta(
                    &mut out,
                    delta.get("thinking").and_then(Value::as_str).unwrap_or(""),
                ),
                "input_json_delta" => self.text_delta(
                    &mut out,
                    delta
                        .get("partial_json")
                        .and_then(Value::as_str)
                        .unwrap_or(""),
                ),
                "signature_delta" => {
                    if let Some(c) = self.cur.as_mut() {
                        c.sig
                            .push_str(delta.get("signature").and_then(Value::as_str).unwrap_or(""));
                    }
                }
                _ => {}
            },
            ClaudeEv::BlockStop => self.block_stop(&mut out),
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
                self.block_stop(&mut out);
                let (status, incomplete) =
                    status_from_claude(self.stop.as_deref().unwrap_or("end_turn"));
                let mut r = self.response(status);
                r["usage"] = self.usage.to_responses();
                r["incomplete_details"] = incomplete;
                let name = if status == "completed" {
                    "response.completed"
                } else {
                    "response.incomplete"
                };
                self.emit(&mut out, name, json!({"response": r}));
                self.done = true;
            }
            ClaudeEv::Error { etype, message } => self.fail(&mut out, &etype, &message),
            ClaudeEv::Ignore => {}
        }
        Ok(out)
    }

    fn finish(&mut self) -> Vec<OutEvent> {
        let mut out = Vec::new();
        self.fail(
            &mut out,
            "api_error",
            "upstream stream ended before message_stop",
        );
        out
    }

    fn error(&mut self, message: &str) -> Vec<OutEvent> {
        let mut out = Vec::new();
        self.fail(&mut out, "api_error", message);
        out
    }
}
