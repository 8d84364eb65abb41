use serde_json::{Value, json};

use super::test_util::*;
use super::*;
use crate::domain::convert::{ConvertError, StreamConverter};

// ---------- streams ----------

const CHAT_STREAM: &str = concat!(
    "data: {\"id\":\"chatcmpl-abc\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"gpt-x\",\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"\"},\"finish_reason\":null}],\"usage\":null}\n\n",
    "data: {\"id\":\"chatcmpl-abc\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"gpt-x\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Let me check ü.\"},\"finish_reason\":null}],\"usage\":null}\n\n",
    "data: {\"id\":\"chatcmpl-abc\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"gpt-x\",\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":0,\"id\":\"call_1\",\"type\":\"function\",\"function\":{\"name\":\"get_weather\",\"arguments\":\"\"}}]},\"finish_reason\":null}],\"usage\":null}\n\n",
    "data: {\"id\":\"chatcmpl-abc\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"gpt-x\",\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":0,\"function\":{\"arguments\":\"{\\\"city\\\":\\\"Par\"}}]},\"finish_reason\":null}],\"usage\":null}\n\n",
    "data: {\"id\":\"chatcmpl-abc\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"gpt-x\",\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":0,\"function\":{\"arguments\":\"is\\\"}\"}}]},\"finish_reason\":null}],\"usage\":null}\n\n",
    "data: {\"id\":\"chatcmpl-abc\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"gpt-x\",\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":1,\"id\":\"call_2\",\"type\":\"function\",\"function\":{\"name\":\"get_time\",\"arguments\":\"{\\\"tz\\\":\\\"CET\\\"}\"}}]},\"finish_reason\":null}],\"usage\":null}\n\n",
    "data: {\"id\":\"chatcmpl-abc\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"gpt-x\",\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"tool_calls\"}],\"usage\":null}\n\n",
    "data: {\"id\":\"chatcmpl-abc\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"gpt-x\",\"choices\":[],\"usage\":{\"prompt_tokens\":2060,\"completion_tokens\":87,\"total_tokens\":2147,\"prompt_tokens_details\":{\"cached_tokens\":2048},\"completion_tokens_details\":{\"reasoning_tokens\":40}}}\n\n",
    "data: [DONE]\n\n",
);

#[test]
fn chat_stream_to_claude_golden() {
    let out = run(StreamToClaude::new(), CHAT_STREAM);
    assert_eq!(
        names(&out),
        vec![
            "message_start",
            "content_block_start",
            "content_block_delta",
            "content_block_stop",
            "content_block_start",
            "content_block_delta",
            "content_block_delta",
            "content_block_stop",
            "content_block_start",
            "content_block_delta",
            "content_block_stop",
            "message_delta",
            "message_stop"
        ]
    );
    let p = payloads(&out);
    assert_eq!(p[0]["message"]["id"], json!("msg_chatcmpl-abc"));
    assert_eq!(p[0]["message"]["stop_reason"], Value::Null);
    assert_eq!(
        p[1],
        json!({"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}})
    );
    assert_eq!(
        p[2]["delta"],
        json!({"type": "text_delta", "text": "Let me check ü."})
    );
    assert_eq!(
        p[4],
        json!({"type": "content_block_start", "index": 1, "content_block": {"type": "tool_use", "id": "call_1", "name": "get_weather", "input": {}}})
    );
    assert_eq!(
        p[5]["delta"],
        json!({"type": "input_json_delta", "partial_json": "{\"city\":\"Par"})
    );
    assert_eq!(p[8]["index"], json!(2));
    assert_eq!(p[8]["content_block"]["id"], json!("call_2"));
    assert_eq!(p[9]["delta"]["partial_json"], json!("{\"tz\":\"CET\"}"));
    assert_eq!(
        p[11],
        json!({"type": "message_delta", "delta": {"stop_reason": "tool_use", "stop_sequence": null},
        "usage": {"input_tokens": 12, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 2048, "output_tokens": 87}})
    );
    for e in &out {
        let v: Value = serde_json::from_str(&e.data).unwrap();
        assert_eq!(
            v["type"].as_str(),
            e.event.as_deref(),
            "event name equals payload type"
        );
    }
}

#[test]
fn chat_stream_to_claude_split_invariant() {
    assert_split_invariant(StreamToClaude::new, CHAT_STREAM);
    let crlf = CHAT_STREAM.replace('\n', "\r\n");
    assert_eq!(
        run(StreamToClaude::new(), &crlf),
        run(StreamToClaude::new(), CHAT_STREAM)
    );
}

fn chunk(delta: Value, finish: Option<&str>) -> String {
    format!(
        "data: {}\n\n",
        json!({"id": "c1", "model": "m", "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]})
    )
}

#[test]
fn chat_stream_interleaved_and_odd_tool_calls() {
    // call 1 starts before call 0's arguments are complete; call 0 continues afterwards
    let sse = [
        chunk(json!({"reasoning_content": "think"}), None),
        chunk(json!({"tool_calls": [{"index": 0, "id": "a", "function": {"name": "f", "arguments": "{\"x\":"}}]}), None),
        chunk(json!({"tool_calls": [{"index": 1, "id": "b", "function": {"name": "g", "arguments": "{}"}}]}), None),
        chunk(json!({"tool_calls": [{"index": 0, "id": "a", "function": {"arguments": "1}"}}]}), None),
        chunk(json!({"tool_calls": [{"index": 2, "id": "c", "function": {"name": "h"}}]}), Some("stop")),
        "data: [DONE]\n\n".to_string(),
    ]
    .concat();
    let out = run(StreamToClaude::new(), &sse);
    let p = payloads(&out);
    let starts: Vec<&Value> = p
        .iter()
        .filter(|v| v["type"] == "content_block_start")
        .collect();
    assert_eq!(starts.len(), 4);
    assert_eq!(starts[0]["content_block"]["type"], json!("thinking"));
    assert_eq!(starts[1]["content_block"]["id"], json!("a"));
    assert_eq!(starts[2]["content_block"]["id"], json!("b"));
    assert_eq!(starts[3]["content_block"]["id"], json!("c"));
    let idx: Vec<u64> = starts
        .iter()
        .map(|s| s["index"].as_u64().unwrap())
        .collect();
    assert_eq!(idx, vec![0, 1, 2, 3]);
    let args_a: String = p
        .iter()
        .filter(|v| v["index"] == 1 && v["delta"]["type"] == "input_json_delta")
        .map(|v| v["delta"]["partial_json"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(args_a, "{\"x\":1}");
    assert!(
        p.iter().any(|v| v["delta"]["type"] == "signature_delta"),
        "thinking gets an envelope signature"
    );
    let md = p.iter().find(|v| v["type"] == "message_delta").unwrap();
    assert_eq!(
        md["delta"]["stop_reason"],
        json!("tool_use"),
        "stop with tool calls means tool_use"
    );
    assert_split_invariant(StreamToClaude::new, &sse);
}

#[test]
fn chat_stream_to_claude_errors() {
    // truncated: no finish_reason
    let out = run(
        StreamToClaude::new(),
        &chunk(json!({"content": "hi"}), None),
    );
    assert_eq!(names(&out).last().unwrap(), "error");
    // finish then end of body without [DONE] (lax relay) is a normal end
    let sse = chunk(json!({"content": "hi"}), Some("length"));
    let out = run(StreamToClaude::new(), &sse);
    assert_eq!(
        payloads(&out)
            .iter()
            .find(|v| v["type"] == "message_delta")
            .unwrap()["delta"]["stop_reason"],
        json!("max_tokens")
    );
    // upstream error payload mid-stream
    let sse = chunk(json!({"content": "hi"}), None)
        + "data: {\"error\":{\"message\":\"boom\",\"type\":\"server_error\"}}\n\n";
    let out = run(StreamToClaude::new(), &sse);
    assert_eq!(
        payloads(&out).last().unwrap(),
        &json!({"type": "error", "error": {"type": "api_error", "message": "boom"}})
    );
    // malformed JSON: converter error, no panic
    let mut c = StreamToClaude::new();
    let r = c.push(&crate::domain::sse::SseEvent {
        data: "{\"choices\": [".into(),
        ..Default::default()
    });
    assert!(matches!(r, Err(ConvertError::Invalid { .. })));
    let r = c.push(&crate::domain::sse::SseEvent {
        data: "42".into(),
        ..Default::default()
    });
    assert!(r.is_err());
    // garbage of every shape never panics
    let mut rng = Rng(7);
    for _ in 0..500 {
        let mut c = StreamToClaude::new();
        let junk = random_json(&mut rng, 3);
        let _ = c.push(&crate::domain::sse::SseEvent {
            data: junk.to_string(),
            ..Default::default()
        });
        let _ = c.finish();
    }
}

pub(crate) fn random_json(rng: &mut Rng, depth: u32) -> Value {
    let keys = [
        "choices",
        "delta",
        "tool_calls",
        "index",
        "id",
        "function",
        "arguments",
        "content",
        "finish_reason",
        "usage",
        "type",
        "message",
        "content_block",
        "partial_json",
        "item",
        "output_index",
        "response",
        "error",
        "name",
        "text",
    ];
    match rng.below(if depth == 0 { 4 } else { 7 }) {
        0 => Value::Null,
        1 => json!(rng.below(5)),
        2 => json!(keys[rng.below(keys.len() as u64) as usize]),
        3 => json!(rng.below(2) == 0),
        4 | 5 => {
            let mut m = serde_json::Map::new();
            for _ in 0..rng.below(5) {
                m.insert(
                    keys[rng.below(keys.len() as u64) as usize].into(),
                    random_json(rng, depth - 1),
                );
            }
            Value::Object(m)
        }
        _ => Value::Array(
            (0..rng.below(3))
                .map(|_| random_json(rng, depth - 1))
                .collect(),
        ),
    }
}

pub(crate) const CLAUDE_STREAM: &str = concat!(
    "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_01X\",\"type\":\"message\",\"role\":\"assistant\",\"model\":\"claude-x\",\"content\":[],\"stop_reason\":null,\"stop_sequence\":null,\"usage\":{\"input_tokens\":12,\"cache_creation_input_tokens\":0,\"cache_read_input_tokens\":2048,\"output_tokens\":1}}}\n\n",
    "event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"thinking\",\"thinking\":\"\",\"signature\":\"\"}}\n\n",
    "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"thinking_delta\",\"thinking\":\"The user wants\"}}\n\n",
    "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"signature_delta\",\"signature\":\"EqQB\"}}\n\n",
    "event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":0}\n\n",
    "event: ping\ndata: {\"type\":\"ping\"}\n\n",
    "event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":1,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n",
    "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":1,\"delta\":{\"type\":\"text_delta\",\"text\":\"Let me check ü.\"}}\n\n",
    "event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":1}\n\n",
    "event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":2,\"content_block\":{\"type\":\"tool_use\",\"id\":\"toolu_01A\",\"name\":\"get_weather\",\"input\":{}}}\n\n",
    "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":2,\"delta\":{\"type\":\"input_json_delta\",\"partial_json\":\"\"}}\n\n",
    "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":2,\"delta\":{\"type\":\"input_json_delta\",\"partial_json\":\"{\\\"city\\\": \\\"Par\"}}\n\n",
    "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":2,\"delta\":{\"type\":\"input_json_delta\",\"partial_json\":\"is\\\"}\"}}\n\n",
    "event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":2}\n\n",
    "event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":3,\"content_block\":{\"type\":\"tool_use\",\"id\":\"toolu_01B\",\"name\":\"now\",\"input\":{}}}\n\n",
    "event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":3}\n\n",
    "event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"tool_use\",\"stop_sequence\":null},\"usage\":{\"output_tokens\":87}}\n\n",
    "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n",
);

#[test]
fn claude_stream_to_chat_golden() {
    let out = run(StreamFromClaude::new(true).with_created(5), CLAUDE_STREAM);
    let p = payloads(&out);
    let deltas: Vec<Value> = p
        .iter()
        .take(p.len() - 2)
        .map(|c| c["choices"][0]["delta"].clone())
        .collect();
    assert_eq!(
        deltas,
        vec![
            json!({"role": "assistant", "content": ""}),
            json!({"content": "Let me check ü."}),
            json!({"tool_calls": [{"index": 0, "id": "toolu_01A", "type": "function", "function": {"name": "get_weather", "arguments": ""}}]}),
            json!({"tool_calls": [{"index": 0, "function": {"arguments": "{\"city\": \"Par"}}]}),
            json!({"tool_calls": [{"index": 0, "function": {"arguments": "is\"}"}}]}),
            json!({"tool_calls": [{"index": 1, "id": "toolu_01B", "type": "function", "function": {"name": "now", "arguments": ""}}]}),
            json!({"tool_calls": [{"index": 1, "function": {"arguments": "{}"}}]}),
            json!({}),
        ]
    );
    let fin = &p[p.len() - 3];
    assert_eq!(fin["choices"][0]["finish_reason"], json!("tool_calls"));
    assert_eq!(fin["usage"], Value::Null);
    assert_eq!(fin["id"], json!("chatcmpl-msg_01X"));
    assert_eq!(fin["created"], json!(5));
    assert_eq!(
        p[p.len() - 2],
        json!({"id": "chatcmpl-msg_01X", "object": "chat.completion.chunk", "created": 5, "model": "claude-x", "choices": [],
        "usage": {"prompt_tokens": 2060, "completion_tokens": 87, "total_tokens": 2147, "prompt_tokens_details": {"cached_tokens": 2048}}})
    );
    assert_eq!(out.last().unwrap().data, "[DONE]");
    assert!(out.iter().all(|e| e.event.is_none()));
    // without include_usage: no usage chunk, no usage keys
    let out = run(StreamFromClaude::new(false), CLAUDE_STREAM);
    assert!(out.iter().all(|e| !e.data.contains("usage")));
    assert_eq!(out.last().unwrap().data, "[DONE]");
    assert_split_invariant(|| StreamFromClaude::new(true), CLAUDE_STREAM);
    // reasoning exposure option
    let out = run(
        StreamFromClaude::new(false).with_reasoning_content(true),
        CLAUDE_STREAM,
    );
    assert!(out.iter().any(|e| e.data.contains("reasoning_content")));
}

#[test]
fn claude_stream_to_chat_errors() {
    // truncated: no message_stop → error chunk, no [DONE]
    let cut = CLAUDE_STREAM.split("event: message_delta").next().unwrap();
    let out = run(StreamFromClaude::new(true), cut);
    assert!(payloads(&out).last().unwrap().get("error").is_some());
    assert!(out.iter().all(|e| e.data != "[DONE]"));
    // upstream error event
    let sse = format!(
        "{}event: error\ndata: {{\"type\":\"error\",\"error\":{{\"type\":\"overloaded_error\",\"message\":\"Overloaded\"}}}}\n\n",
        CLAUDE_STREAM
            .split("event: content_block_start")
            .next()
            .unwrap()
    );
    let out = run(StreamFromClaude::new(true), &sse);
    assert_eq!(
        payloads(&out).last().unwrap()["error"]["message"],
        json!("Overloaded")
    );
    assert_eq!(out.len(), 2);
    let mut c = StreamFromClaude::new(true);
    assert!(
        c.push(&crate::domain::sse::SseEvent {
            data: "{nope".into(),
            ..Default::default()
        })
        .is_err()
    );
    assert!(
        c.push(&crate::domain::sse::SseEvent {
            data: "{\"type\":\"content_block_start\"}".into(),
            ..Default::default()
        })
        .is_err()
    );
    let mut rng = Rng(11);
    for _ in 0..500 {
        let mut c = StreamFromClaude::new(true);
        let _ = c.push(&crate::domain::sse::SseEvent {
            data: random_json(&mut rng, 3).to_string(),
            ..Default::default()
        });
        let _ = c.finish();
    }
}

/// Chat upstream → Claude → Chat client keeps text, calls, ids and arguments.
#[test]
fn chat_stream_round_trip() {
    let claude = to_sse(&run(StreamToClaude::new(), CHAT_STREAM));
    let chat = run(StreamFromClaude::new(true), &claude);
    let mut text = String::new();
    let mut args = vec![String::new(), String::new()];
    let mut ids = Vec::new();
    for p in payloads(&chat) {
        let d = &p["choices"][0]["delta"];
        text.push_str(d["content"].as_str().unwrap_or(""));
        for tc in d["tool_calls"].as_array().into_iter().flatten() {
            let i = tc["index"].as_u64().unwrap() as usize;
            args[i].push_str(tc["function"]["arguments"].as_str().unwrap_or(""));
            if let Some(id) = tc["id"].as_str() {
                ids.push(id.to_string());
            }
        }
    }
    assert_eq!(text, "Let me check ü.");
    assert_eq!(ids, vec!["call_1", "call_2"]);
    assert_eq!(args, vec!["{\"city\":\"Paris\"}", "{\"tz\":\"CET\"}"]);
}
