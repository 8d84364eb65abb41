//! Stream tests for the Gemini converter: golden sequences, chunk splits, consistency with
//! the non-streaming converters, round trips and bad input.

use serde_json::{Value, json};

use super::super::super::sse::{SseEvent, SseParser};
use super::super::{ConvertError, OutEvent, StreamConverter};
use super::tests::Rng;
use super::*;

/// The Gemini stream of protocols.md §5.5 (CRLF framing, as the real API sends it).
fn gemini_stream() -> String {
    let chunks = [
        r#"{"candidates":[{"index":0,"content":{"role":"model","parts":[{"text":"Need weather.","thought":true}]}}],"usageMetadata":{"promptTokenCount":2060,"totalTokenCount":2060},"modelVersion":"gemini-x","responseId":"abc123"}"#,
        r#"{"candidates":[{"index":0,"content":{"role":"model","parts":[{"text":"Let me"}]}}],"usageMetadata":{"promptTokenCount":2060,"totalTokenCount":2060},"modelVersion":"gemini-x","responseId":"abc123"}"#,
        r#"{"candidates":[{"index":0,"content":{"role":"model","parts":[{"text":" check."}]}}],"usageMetadata":{"promptTokenCount":2060,"totalTokenCount":2060},"modelVersion":"gemini-x","responseId":"abc123"}"#,
        r#"{"candidates":[{"index":0,"content":{"role":"model","parts":[{"functionCall":{"name":"get_weather","args":{"city":"Paris"}},"thoughtSignature":"CiQB"}]},"finishReason":"STOP"}],"usageMetadata":{"promptTokenCount":2060,"cachedContentTokenCount":2048,"candidatesTokenCount":47,"thoughtsTokenCount":40,"totalTokenCount":2147},"modelVersion":"gemini-x","responseId":"abc123"}"#,
    ];
    chunks
        .iter()
        .map(|c| format!("data: {c}\r\n\r\n"))
        .collect()
}

/// The Claude stream of protocols.md §2.6 (without the trailing ping/error examples).
fn claude_stream() -> String {
    let events = [
        (
            "message_start",
            r#"{"type":"message_start","message":{"id":"msg_01X","type":"message","role":"assistant","model":"claude-x","content":[],"stop_reason":null,"stop_sequence":null,"usage":{"input_tokens":12,"cache_creation_input_tokens":0,"cache_read_input_tokens":2048,"output_tokens":1}}}"#,
        ),
        (
            "content_block_start",
            r#"{"type":"content_block_start","index":0,"content_block":{"type":"thinking","thinking":"","signature":""}}"#,
        ),
        (
            "content_block_delta",
            r#"{"type":"content_block_delta","index":0,"delta":{"type":"thinking_delta","thinking":"The user wants"}}"#,
        ),
        (
            "content_block_delta",
            r#"{"type":"content_block_delta","index":0,"delta":{"type":"signature_delta","signature":"EqQB"}}"#,
        ),
        (
            "content_block_stop",
            r#"{"type":"content_block_stop","index":0}"#,
        ),
        ("ping", r#"{"type":"ping"}"#),
        (
            "content_block_start",
            r#"{"type":"content_block_start","index":1,"content_block":{"type":"text","text":""}}"#,
        ),
        (
            "content_block_delta",
            r#"{"type":"content_block_delta","index":1,"delta":{"type":"text_delta","text":"Let me check."}}"#,
        ),
        (
            "content_block_stop",
            r#"{"type":"content_block_stop","index":1}"#,
        ),
        (
            "content_block_start",
            r#"{"type":"content_block_start","index":2,"content_block":{"type":"tool_use","id":"toolu_01A","name":"get_weather","input":{}}}"#,
        ),
        (
            "content_block_delta",
            r#"{"type":"content_block_delta","index":2,"delta":{"type":"input_json_delta","partial_json":""}}"#,
        ),
        (
            "content_block_delta",
            r#"{"type":"content_block_delta","index":2,"delta":{"type":"input_json_delta","partial_json":"{\"city\": \"Par"}}"#,
        ),
        (
            "content_block_delta",
            r#"{"type":"content_block_delta","index":2,"delta":{"type":"input_json_delta","partial_json":"is\"}"}}"#,
        ),
        (
            "content_block_stop",
            r#"{"type":"content_block_stop","index":2}"#,
        ),
        (
            "message_delta",
            r#"{"type":"message_delta","delta":{"stop_reason":"tool_use","stop_sequence":null},"usage":{"input_tokens":12,"cache_creation_input_tokens":0,"cache_read_input_tokens":2048,"output_tokens":87}}"#,
        ),
        ("message_stop", r#"{"type":"message_stop"}"#),
    ];
    events
        .iter()
        .map(|(e, d)| format!("event: {e}\ndata: {d}\n\n"))
        .collect()
}

/// Parses `input` split into the given chunks and runs it through `conv` (then `finish`).
fn run_chunks<C: StreamConverter>(
    mut conv: C,
    chunks: &[&[u8]],
) -> Result<Vec<OutEvent>, ConvertError> {
    let mut parser = SseParser::new();
    let mut out = Vec::new();
    for c in chunks {
        for ev in parser.push(c).unwrap() {
            out.extend(conv.push(&ev)?);
        }
    }
    if let Some(ev) = parser.finish().unwrap() {
        out.extend(conv.push(&ev)?);
    }
    out.extend(conv.finish());
    Ok(out)
}

fn run<C: StreamConverter>(conv: C, input: &str) -> Result<Vec<OutEvent>, ConvertError> {
    run_chunks(conv, &[input.as_bytes()])
}

fn parsed(events: &[OutEvent]) -> Vec<(Option<String>, Value)> {
    events
        .iter()
        .map(|e| (e.event.clone(), serde_json::from_str(&e.data).unwrap()))
        .collect()
}

/// Rebuilds a Claude message from its stream events (the SDK's accumulation rules).
fn accumulate_claude(events: &[OutEvent]) -> Value {
    let mut msg = json!(null);
    let mut json_buf: Vec<String> = Vec::new();
    for (_, d) in parsed(events) {
        match d["type"].as_str().unwrap() {
            "message_start" => msg = d["message"].clone(),
            "content_block_start" => {
                let idx = d["index"].as_u64().unwrap() as usize;
                assert_eq!(
                    idx,
                    msg["content"].as_array().unwrap().len(),
                    "dense indexes"
                );
                msg["content"]
                    .as_array_mut()
                    .unwrap()
                    .push(d["content_block"].clone());
                json_buf.push(String::new());
            }
            "content_block_delta" => {
                let idx = d["index"].as_u64().unwrap() as usize;
                let b = &mut msg["content"][idx];
                let delta = &d["delta"];
                match delta["type"].as_str().unwrap() {
                    "text_delta" => {
                        b["text"] = json!(format!(
                            "{}{}",
                            b["text"].as_str().unwrap(),
                            delta["text"].as_str().unwrap()
                        ))
                    }
                    "thinking_delta" => {
                        b["thinking"] = json!(format!(
                            "{}{}",
                            b["thinking"].as_str().unwrap(),
                            delta["thinking"].as_str().unwrap()
                        ))
                    }
                    "signature_delta" => b["signature"] = delta["signature"].clone(),
                    "input_json_delta" => {
                        json_buf[idx].push_str(delta["partial_json"].as_str().unwrap())
                    }
                    t => panic!("unknown delta {t}"),
                }
            }
            "content_block_stop" => {
                let idx = d["index"].as_u64().unwrap() as usize;
                if msg["content"][idx]["type"] == "tool_use" && !json_buf[idx].is_empty() {
                    msg["content"][idx]["input"] = serde_json::from_str(&json_buf[idx]).unwrap();
                }
            }
            "message_delta" => {
                msg["stop_reason"] = d["delta"]["stop_reason"].clone();
                msg["usage"] = d["usage"].clone();
            }
            "message_stop" => {}
            t => panic!("unexpected event {t}"),
        }
    }
    msg
}

// ---------------------------------------------------------------- Gemini → Claude

#[test]
fn golden_stream_to_claude() {
    let out = parsed(&run(StreamToClaude::with_model("gemini-pro"), &gemini_stream()).unwrap());
    let id = response_call_id("abc123", 0);
    let d = |ty: &str, v: Value| (Some(ty.to_string()), v);
    let want = vec![
        d(
            "message_start",
            json!({"type": "message_start", "message": {"id": "msg_abc123", "type": "message", "role": "assistant",
            "model": "gemini-pro", "content": [], "stop_reason": null, "stop_sequence": null,
            "usage": {"input_tokens": 2060, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0, "output_tokens": 0}}}),
        ),
        d(
            "content_block_start",
            json!({"type": "content_block_start", "index": 0, "content_block": {"type": "thinking", "thinking": "", "signature": ""}}),
        ),
        d(
            "content_block_delta",
            json!({"type": "content_block_delta", "index": 0, "delta": {"type": "thinking_delta", "thinking": "Need weather."}}),
        ),
        d(
            "content_block_stop",
            json!({"type": "content_block_stop", "index": 0}),
        ),
        d(
            "content_block_start",
            json!({"type": "content_block_start", "index": 1, "content_block": {"type": "text", "text": ""}}),
        ),
        d(
            "content_block_delta",
            json!({"type": "content_block_delta", "index": 1, "delta": {"type": "text_delta", "text": "Let me"}}),
        ),
        d(
            "content_block_delta",
            json!({"type": "content_block_delta", "index": 1, "delta": {"type": "text_delta", "text": " check."}}),
        ),
        d(
            "content_block_stop",
            json!({"type": "content_block_stop", "index": 1}),
        ),
        d(
            "content_block_start",
            json!({"type": "content_block_start", "index": 2, "content_block": {"type": "thinking", "thinking": "", "signature": ""}}),
        ),
        d(
            "content_block_delta",
            json!({"type": "content_block_delta", "index": 2, "delta": {"type": "signature_delta", "signature": "cch1.gemini.CiQB"}}),
        ),
        d(
            "content_block_stop",
            json!({"type": "content_block_stop", "index": 2}),
        ),
        d(
            "content_block_start",
            json!({"type": "content_block_start", "index": 3, "content_block": {"type": "tool_use", "id": id, "name": "get_weather", "input": {}}}),
        ),
        d(
            "content_block_delta",
            json!({"type": "content_block_delta", "index": 3, "delta": {"type": "input_json_delta", "partial_json": "{\"city\":\"Paris\"}"}}),
        ),
        d(
            "content_block_stop",
            json!({"type": "content_block_stop", "index": 3}),
        ),
        d(
            "message_delta",
            json!({"type": "message_delta", "delta": {"stop_reason": "tool_use", "stop_sequence": null},
            "usage": {"input_tokens": 12, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 2048, "output_tokens": 87}}),
        ),
        d("message_stop", json!({"type": "message_stop"})),
    ];
    assert_eq!(out, want);
}

#[test]
fn stream_to_claude_emits_on_first_event() {
    let mut conv = StreamToClaude::new();
    let first = SseEvent {
        data: r#"{"candidates":[{"content":{"parts":[{"text":"Hi"}]}}]}"#.into(),
        ..Default::default()
    };
    let out = conv.push(&first).unwrap();
    let types: Vec<_> = out.iter().map(|e| e.event.clone().unwrap()).collect();
    assert_eq!(
        types,
        [
            "message_start",
            "content_block_start",
            "content_block_delta"
        ]
    );
}

/// The non-streaming answer the stream above adds up to.
fn merged_gemini_response() -> Value {
    json!({"candidates": [{"index": 0, "finishReason": "STOP", "content": {"role": "model", "parts": [
        {"text": "Need weather.", "thought": true}, {"text": "Let me"}, {"text": " check."},
        {"functionCall": {"name": "get_weather", "args": {"city": "Paris"}}, "thoughtSignature": "CiQB"}]}}],
        "usageMetadata": {"promptTokenCount": 2060, "cachedContentTokenCount": 2048, "candidatesTokenCount": 47,
            "thoughtsTokenCount": 40, "totalTokenCount": 2147},
        "modelVersion": "gemini-x", "responseId": "abc123"})
}

#[test]
fn stream_to_claude_matches_non_streaming_conversion() {
    let streamed = accumulate_claude(&run(StreamToClaude::new(), &gemini_stream()).unwrap());
    let whole = response_to_claude(&merged_gemini_response()).unwrap();
    assert_eq!(streamed, whole);
}

#[test]
fn stream_to_claude_every_byte_split_gives_same_output() {
    let input = gemini_stream();
    let want = run(StreamToClaude::new(), &input).unwrap();
    let bytes = input.as_bytes();
    for i in 0..=bytes.len() {
        let got = run_chunks(StreamToClaude::new(), &[&bytes[..i], &bytes[i..]]).unwrap();
        assert_eq!(got, want, "split at {i}");
    }
    let mut rng = Rng::new(7);
    for _ in 0..200 {
        let mut cuts: Vec<usize> = (0..1 + rng.below(20))
            .map(|_| rng.below(bytes.len() as u64 + 1) as usize)
            .collect();
        cuts.sort_unstable();
        let mut chunks = Vec::new();
        let mut prev = 0;
        for c in cuts {
            chunks.push(&bytes[prev..c]);
            prev = c;
        }
        chunks.push(&bytes[prev..]);
        assert_eq!(run_chunks(StreamToClaude::new(), &chunks).unwrap(), want);
    }
}

#[test]
fn stream_to_claude_endings() {
    // Truncated: no finishReason → error event, never a clean finish.
    let cut = "data: {\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"Hi\"}]}}]}\n\n";
    let out = parsed(&run(StreamToClaude::new(), cut).unwrap());
    assert_eq!(out.last().unwrap().0.as_deref(), Some("error"));
    assert!(
        !out.iter()
            .any(|(e, _)| e.as_deref() == Some("message_stop"))
    );
    // Upstream error chunk mid-stream.
    let err = format!(
        "{cut}data: {{\"error\":{{\"code\":503,\"message\":\"overloaded\",\"status\":\"UNAVAILABLE\"}}}}\n\n"
    );
    let out = parsed(&run(StreamToClaude::new(), &err).unwrap());
    assert_eq!(
        out.last().unwrap().1,
        json!({"type": "error", "error": {"type": "overloaded_error", "message": "overloaded"}})
    );
    // Code Assist envelope, safety stop with no content, MAX_TOKENS.
    let ca = "data: {\"response\":{\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"a\"}]},\"finishReason\":\"MAX_TOKENS\"}]}}\n\n";
    let msg = accumulate_claude(&run(StreamToClaude::new(), ca).unwrap());
    assert_eq!(msg["stop_reason"], "max_tokens");
    let safety = "data: {\"candidates\":[{\"finishReason\":\"SAFETY\"}]}\n\n";
    let msg = accumulate_claude(&run(StreamToClaude::new(), safety).unwrap());
    assert_eq!(
        (msg["stop_reason"].clone(), msg["content"].clone()),
        (json!("refusal"), json!([]))
    );
    let malformed = "data: {\"candidates\":[{\"finishReason\":\"MALFORMED_FUNCTION_CALL\"}]}\n\n";
    let out = parsed(&run(StreamToClaude::new(), malformed).unwrap());
    assert_eq!(out.last().unwrap().0.as_deref(), Some("error"));
    // error() after the end adds nothing; before, it ends the stream once.
    let mut c = StreamToClaude::new();
    assert_eq!(c.error("boom").len(), 1);
    assert!(c.error("again").is_empty() && c.finish().is_empty());
}

#[test]
fn stream_to_claude_bad_input_is_an_error_not_a_panic() {
    for data in [
        "{",
        "[1]",
        "3",
        "{\"candidates\":[{\"content\":{\"parts\":{}}}]}",
        "{\"candidates\":[{\"content\":{\"parts\":[{\"functionCall\":{\"args\":{}}}]}}]}",
        "{\"candidates\":[{\"content\":{\"parts\":[{\"functionCall\":{\"name\":\"f\",\"args\":[1]}}]}}]}",
    ] {
        let mut c = StreamToClaude::new();
        let e = SseEvent {
            data: data.into(),
            ..Default::default()
        };
        assert!(
            matches!(c.push(&e), Err(ConvertError::Invalid { .. })),
            "{data}"
        );
    }
    // Blank keep-alive events are ignored.
    let mut c = StreamToClaude::new();
    assert!(c.push(&SseEvent::default()).unwrap().is_empty());
}

#[test]
fn fuzz_stream_converters_never_panic() {
    let inputs = [gemini_stream(), claude_stream()];
    let mut rng = Rng::new(99);
    for round in 0..400 {
        let mut bytes = inputs[round % 2].clone().into_bytes();
        for _ in 0..1 + rng.below(8) {
            let i = rng.below(bytes.len() as u64) as usize;
            match rng.below(3) {
                0 => bytes[i] = b"{}[]\":,\n a0"[rng.below(11) as usize],
                1 => {
                    bytes.remove(i);
                }
                _ => bytes.insert(i, b"\"{}\n"[rng.below(4) as usize]),
            }
        }
        let mut parser = SseParser::new();
        let events = parser.push(&bytes).unwrap_or_default();
        let mut a = StreamToClaude::new();
        let mut b = StreamFromClaude::new();
        for ev in &events {
            let _ = a.push(ev);
            let _ = b.push(ev);
        }
        let _ = (a.finish(), b.finish());
    }
}

// ---------------------------------------------------------------- Claude → Gemini

#[test]
fn golden_stream_from_claude() {
    let out = run(StreamFromClaude::new(), &claude_stream()).unwrap();
    assert!(
        out.iter().all(|e| e.event.is_none()),
        "Gemini chunks have no event names"
    );
    let chunk = |part: Value| {
        json!({"candidates": [{"index": 0, "content": {"role": "model", "parts": [part]}}],
        "usageMetadata": {"promptTokenCount": 2060, "totalTokenCount": 2060}, "modelVersion": "claude-x", "responseId": "msg_01X"})
    };
    let want = vec![
        chunk(json!({"text": "The user wants", "thought": true})),
        chunk(json!({"text": "", "thought": true, "thoughtSignature": "cch1.anthropic.EqQB"})),
        chunk(json!({"text": "Let me check."})),
        chunk(
            json!({"functionCall": {"name": "get_weather", "args": {"city": "Paris"}, "id": "toolu_01A"}}),
        ),
        json!({"candidates": [{"index": 0, "finishReason": "STOP"}],
            "usageMetadata": {"promptTokenCount": 2060, "cachedContentTokenCount": 2048, "candidatesTokenCount": 87, "totalTokenCount": 2147},
            "modelVersion": "claude-x", "responseId": "msg_01X"}),
    ];
    let got: Vec<Value> = parsed(&out).into_iter().map(|(_, v)| v).collect();
    assert_eq!(got, want);
}

#[test]
fn stream_from_claude_every_byte_split_gives_same_output() {
    let input = claude_stream();
    let want = run(StreamFromClaude::new(), &input).unwrap();
    let bytes = input.as_bytes();
    for i in 0..=bytes.len() {
        assert_eq!(
            run_chunks(StreamFromClaude::new(), &[&bytes[..i], &bytes[i..]]).unwrap(),
            want,
            "split at {i}"
        );
    }
}

#[test]
fn stream_from_claude_endings_and_bad_input() {
    let cut: String = claude_stream()
        .split("event: message_stop")
        .next()
        .unwrap()
        .to_string();
    let out = parsed(&run(StreamFromClaude::new(), &cut).unwrap());
    assert_eq!(out.last().unwrap().1["error"]["status"], "INTERNAL");
    let err = "event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\",\"message\":\"Overloaded\"}}\n\n";
    let out = parsed(&run(StreamFromClaude::new(), err).unwrap());
    assert_eq!(
        out,
        vec![(
            None,
            json!({"error": {"code": 503, "message": "Overloaded", "status": "UNAVAILABLE"}})
        )]
    );
    let bad_args = "event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"tool_use\",\"id\":\"t\",\"name\":\"f\",\"input\":{}}}\n\n\
        event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"input_json_delta\",\"partial_json\":\"{oops\"}}\n\n\
        event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":0}\n\n";
    assert!(matches!(
        run(StreamFromClaude::new(), bad_args),
        Err(ConvertError::Invalid { .. })
    ));
    let mut c = StreamFromClaude::new();
    assert!(
        c.push(&SseEvent {
            data: "not json".into(),
            ..Default::default()
        })
        .is_err()
    );
}

#[test]
fn stream_from_claude_matches_non_streaming_conversion() {
    // Streamed Gemini chunks, merged part by part, say what response_from_claude says.
    let out = run(StreamFromClaude::new(), &claude_stream()).unwrap();
    let parts: Vec<Value> = parsed(&out)
        .iter()
        .filter_map(|(_, v)| v["candidates"][0]["content"]["parts"].get(0).cloned())
        .collect();
    let whole = response_from_claude(&json!({"id": "msg_01X", "model": "claude-x", "content": [
        {"type": "thinking", "thinking": "The user wants", "signature": "EqQB"},
        {"type": "text", "text": "Let me check."},
        {"type": "tool_use", "id": "toolu_01A", "name": "get_weather", "input": {"city": "Paris"}}],
        "stop_reason": "tool_use", "usage": {"input_tokens": 12, "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 2048, "output_tokens": 87}}))
    .unwrap();
    let last = parsed(&out).last().unwrap().1.clone();
    assert_eq!(last["usageMetadata"], whole["usageMetadata"]);
    assert_eq!(
        last["candidates"][0]["finishReason"],
        whole["candidates"][0]["finishReason"]
    );
    // The stream sends the thinking text and its signature as two parts.
    let mut merged = parts.clone();
    merged[0]["thoughtSignature"] = merged[1]["thoughtSignature"].clone();
    merged.remove(1);
    assert_eq!(
        Value::Array(merged),
        whole["candidates"][0]["content"]["parts"]
    );
}

#[test]
fn property_stream_round_trip_claude_gemini_claude() {
    // Claude events → Gemini chunks → Claude events keeps text, thinking, tool calls and ids.
    for seed in 0..100 {
        let mut rng = Rng::new(seed);
        let mut events = vec![(
            "message_start",
            json!({"type": "message_start", "message": {"id": "msg_r", "type": "message",
            "role": "assistant", "model": "m", "content": [], "stop_reason": null, "stop_sequence": null,
            "usage": {"input_tokens": 5, "output_tokens": 1}}}),
        )];
        let mut want = Vec::new();
        let blocks = 1 + rng.below(4) as usize;
        let mut calls = 0;
        for idx in 0..blocks {
            let start = |b: Value, i: usize| {
                (
                    "content_block_start",
                    json!({"type": "content_block_start", "index": i, "content_block": b}),
                )
            };
            let delta = |d: Value, i: usize| {
                (
                    "content_block_delta",
                    json!({"type": "content_block_delta", "index": i, "delta": d}),
                )
            };
            match rng.below(3) {
                0 => {
                    let (a, b) = (rng.text(), rng.text());
                    events.push(start(json!({"type": "text", "text": ""}), idx));
                    events.push(delta(json!({"type": "text_delta", "text": a}), idx));
                    events.push(delta(json!({"type": "text_delta", "text": b}), idx));
                    want.push(json!({"type": "text", "text": format!("{a}{b}")}));
                }
                1 => {
                    let t = rng.text();
                    events.push(start(
                        json!({"type": "thinking", "thinking": "", "signature": ""}),
                        idx,
                    ));
                    events.push(delta(json!({"type": "thinking_delta", "thinking": t}), idx));
                    events.push(delta(
                        json!({"type": "signature_delta", "signature": format!("sig{seed}")}),
                        idx,
                    ));
                    want.push(json!({"type": "thinking", "thinking": t, "signature": format!("sig{seed}")}));
                }
                _ => {
                    let input = json!({"q": rng.text(), "n": rng.below(9)});
                    let s = input.to_string();
                    let cut = s.len() / 2;
                    let cut = (0..=cut).rev().find(|c| s.is_char_boundary(*c)).unwrap();
                    let id = format!("toolu_{seed}_{calls}");
                    calls += 1;
                    events.push(start(
                        json!({"type": "tool_use", "id": id, "name": "f", "input": {}}),
                        idx,
                    ));
                    events.push(delta(
                        json!({"type": "input_json_delta", "partial_json": &s[..cut]}),
                        idx,
                    ));
                    events.push(delta(
                        json!({"type": "input_json_delta", "partial_json": &s[cut..]}),
                        idx,
                    ));
                    want.push(json!({"type": "tool_use", "id": id, "name": "f", "input": input}));
                }
            }
            events.push((
                "content_block_stop",
                json!({"type": "content_block_stop", "index": idx}),
            ));
        }
        let stop = if calls > 0 { "tool_use" } else { "end_turn" };
        events.push(("message_delta", json!({"type": "message_delta", "delta": {"stop_reason": stop}, "usage": {"output_tokens": 9}})));
        events.push(("message_stop", json!({"type": "message_stop"})));
        let sse: String = events
            .iter()
            .map(|(e, d)| format!("event: {e}\ndata: {d}\n\n"))
            .collect();
        let gem: String = run(StreamFromClaude::new(), &sse)
            .unwrap()
            .iter()
            .map(OutEvent::to_sse)
            .collect();
        let back = accumulate_claude(&run(StreamToClaude::new(), &gem).unwrap());
        // Adjacent text blocks merge on the way through Gemini (parts carry no block bounds).
        let mut merged: Vec<Value> = Vec::new();
        for b in want {
            match merged.last_mut() {
                Some(prev) if prev["type"] == "text" && b["type"] == "text" => {
                    prev["text"] = json!(format!(
                        "{}{}",
                        prev["text"].as_str().unwrap(),
                        b["text"].as_str().unwrap()
                    ));
                }
                _ => merged.push(b),
            }
        }
        assert_eq!(back["content"], Value::Array(merged), "seed {seed}");
        assert_eq!(back["stop_reason"], stop);
    }
}
