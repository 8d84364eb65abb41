use serde_json::{Value, json};

use super::*;
use crate::domain::convert::openai_chat::test_util::*;
use crate::domain::convert::{ConvertError, StreamConverter};
use crate::domain::sse::SseEvent;

fn ev(v: Value) -> String {
    format!("event: {}\ndata: {}\n\n", v["type"].as_str().unwrap(), v)
}

fn responses_stream() -> String {
    [
        json!({"type":"response.created","sequence_number":0,"response":{"id":"resp_01","object":"response","created_at":1,"status":"in_progress","model":"gpt-x","output":[]}}),
        json!({"type":"response.in_progress","sequence_number":1,"response":{"id":"resp_01","status":"in_progress","output":[]}}),
        json!({"type":"response.output_item.added","sequence_number":2,"output_index":0,"item":{"type":"reasoning","id":"rs_01","summary":[]}}),
        json!({"type":"response.reasoning_summary_part.added","sequence_number":3,"item_id":"rs_01","output_index":0,"summary_index":0,"part":{"type":"summary_text","text":""}}),
        json!({"type":"response.reasoning_summary_text.delta","sequence_number":4,"item_id":"rs_01","output_index":0,"summary_index":0,"delta":"Need weather."}),
        json!({"type":"response.reasoning_summary_text.done","sequence_number":5,"item_id":"rs_01","output_index":0,"summary_index":0,"text":"Need weather."}),
        json!({"type":"response.output_item.done","sequence_number":7,"output_index":0,"item":{"type":"reasoning","id":"rs_01","summary":[{"type":"summary_text","text":"Need weather."}],"encrypted_content":"gAAAA"}}),
        json!({"type":"response.output_item.added","sequence_number":8,"output_index":1,"item":{"type":"message","id":"msg_01","status":"in_progress","role":"assistant","content":[]}}),
        json!({"type":"response.content_part.added","sequence_number":9,"item_id":"msg_01","output_index":1,"content_index":0,"part":{"type":"output_text","text":"","annotations":[]}}),
        json!({"type":"response.output_text.delta","sequence_number":10,"item_id":"msg_01","output_index":1,"content_index":0,"delta":"Let me check ü.","logprobs":[]}),
        json!({"type":"response.output_item.done","sequence_number":13,"output_index":1,"item":{"type":"message","id":"msg_01","status":"completed","role":"assistant","content":[]}}),
        json!({"type":"response.output_item.added","sequence_number":14,"output_index":2,"item":{"type":"function_call","id":"fc_01","call_id":"call_01","name":"get_weather","arguments":"","status":"in_progress"}}),
        json!({"type":"response.function_call_arguments.delta","sequence_number":15,"item_id":"fc_01","output_index":2,"delta":"{\"city\":"}),
        json!({"type":"response.function_call_arguments.done","sequence_number":16,"item_id":"fc_01","output_index":2,"name":"get_weather","arguments":"{\"city\":\"Paris\"}"}),
        json!({"type":"response.output_item.done","sequence_number":17,"output_index":2,"item":{"type":"function_call","id":"fc_01","call_id":"call_01","name":"get_weather","arguments":"{\"city\":\"Paris\"}","status":"completed"}}),
        json!({"type":"response.output_item.added","sequence_number":18,"output_index":3,"item":{"type":"function_call","id":"fc_02","call_id":"call_02","name":"now","arguments":""}}),
        json!({"type":"response.output_item.done","sequence_number":19,"output_index":3,"item":{"type":"function_call","id":"fc_02","call_id":"call_02","name":"now","arguments":"{\"tz\":\"CET\"}"}}),
        json!({"type":"response.completed","sequence_number":20,"response":{"id":"resp_01","status":"completed","output":[],"usage":{"input_tokens":2060,"input_tokens_details":{"cached_tokens":2048,"cache_write_tokens":0},"output_tokens":87,"output_tokens_details":{"reasoning_tokens":40},"total_tokens":2147}}}),
    ].into_iter().map(ev).collect()
}

#[test]
fn responses_stream_to_claude_golden() {
    let out = run(StreamToClaude::new(), &responses_stream());
    let p = payloads(&out);
    let compact: Vec<String> = p
        .iter()
        .map(|v| {
            let t = v["type"].as_str().unwrap().to_string();
            match t.as_str() {
                "content_block_start" => format!(
                    "start{} {}",
                    v["index"],
                    v["content_block"]["type"].as_str().unwrap()
                ),
                "content_block_delta" => format!(
                    "delta{} {}",
                    v["index"],
                    v["delta"]["type"].as_str().unwrap()
                ),
                "content_block_stop" => format!("stop{}", v["index"]),
                _ => t,
            }
        })
        .collect();
    assert_eq!(
        compact,
        vec![
            "message_start",
            "start0 thinking",
            "delta0 thinking_delta",
            "delta0 signature_delta",
            "stop0",
            "start1 text",
            "delta1 text_delta",
            "stop1",
            "start2 tool_use",
            "delta2 input_json_delta",
            "delta2 input_json_delta",
            "stop2",
            "start3 tool_use",
            "delta3 input_json_delta",
            "stop3",
            "message_delta",
            "message_stop"
        ]
    );
    assert_eq!(p[0]["message"]["id"], json!("msg_resp_01"));
    assert_eq!(
        p[8]["content_block"],
        json!({"type": "tool_use", "id": "call_01", "name": "get_weather", "input": {}})
    );
    let args: String = [9, 10]
        .iter()
        .map(|i| p[*i]["delta"]["partial_json"].as_str().unwrap())
        .collect();
    assert_eq!(
        args, "{\"city\":\"Paris\"}",
        "the .done remainder completes the deltas"
    );
    assert_eq!(
        p[13]["delta"]["partial_json"],
        json!("{\"tz\":\"CET\"}"),
        "arguments only in output_item.done"
    );
    assert_eq!(p[15]["delta"]["stop_reason"], json!("tool_use"));
    assert_eq!(
        p[15]["usage"],
        json!({"input_tokens": 12, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 2048, "output_tokens": 87})
    );
    assert_split_invariant(StreamToClaude::new, &responses_stream());
}

#[test]
fn responses_stream_to_claude_errors() {
    let s = responses_stream();
    let cut = s.split("event: response.completed").next().unwrap();
    assert_eq!(
        names(&run(StreamToClaude::new(), cut)).last().unwrap(),
        "error",
        "no response.completed = truncated"
    );
    let failed = ev(json!({"type": "response.created", "response": {"id": "r", "model": "m"}}))
        + &ev(
            json!({"type": "response.failed", "response": {"status": "failed", "error": {"code": "rate_limit_exceeded", "message": "try again in 2s"}}}),
        );
    let out = run(StreamToClaude::new(), &failed);
    assert_eq!(
        payloads(&out).last().unwrap(),
        &json!({"type": "error", "error": {"type": "rate_limit_error", "message": "try again in 2s"}})
    );
    let inc = ev(json!({"type": "response.created", "response": {"id": "r", "model": "m"}}))
        + &ev(json!({"type": "response.output_text.delta", "output_index": 0, "delta": "x"}))
        + &ev(
            json!({"type": "response.incomplete", "response": {"status": "incomplete", "incomplete_details": {"reason": "max_output_tokens"}}}),
        );
    let p = payloads(&run(StreamToClaude::new(), &inc));
    assert_eq!(
        p.iter().find(|v| v["type"] == "message_delta").unwrap()["delta"]["stop_reason"],
        json!("max_tokens")
    );
    let mut c = StreamToClaude::new();
    assert!(matches!(
        c.push(&SseEvent {
            data: "{".into(),
            ..Default::default()
        }),
        Err(ConvertError::Invalid { .. })
    ));
    assert!(
        c.push(&SseEvent {
            data: "{\"type\":\"response.output_item.added\"}".into(),
            ..Default::default()
        })
        .is_err()
    );
    let mut rng = Rng(5);
    for _ in 0..500 {
        let mut c = StreamToClaude::new();
        let mut v = crate::domain::convert::openai_chat::random_json_for_tests(&mut rng, 3);
        if let Some(o) = v.as_object_mut() {
            let types = [
                "response.created",
                "response.output_item.added",
                "response.output_item.done",
                "response.completed",
                "response.function_call_arguments.done",
                "response.output_text.delta",
            ];
            o.insert(
                "type".into(),
                json!(types[rng.below(types.len() as u64) as usize]),
            );
        }
        let _ = c.push(&SseEvent {
            data: v.to_string(),
            ..Default::default()
        });
        let _ = c.finish();
    }
}

fn claude_stream() -> &'static str {
    crate::domain::convert::openai_chat::CLAUDE_STREAM_FIXTURE
}

/// Checks the Responses encoder invariants: dense sequence numbers, dense output indexes,
/// every added item done, exactly one terminal event, last.
fn check_invariants(p: &[Value]) {
    for (i, v) in p.iter().enumerate() {
        assert_eq!(v["sequence_number"], json!(i));
    }
    let added: Vec<u64> = p
        .iter()
        .filter(|v| v["type"] == "response.output_item.added")
        .map(|v| v["output_index"].as_u64().unwrap())
        .collect();
    let done: Vec<u64> = p
        .iter()
        .filter(|v| v["type"] == "response.output_item.done")
        .map(|v| v["output_index"].as_u64().unwrap())
        .collect();
    assert_eq!(added, (0..added.len() as u64).collect::<Vec<_>>());
    assert_eq!(added, done);
    let terminals = p
        .iter()
        .filter(|v| {
            matches!(
                v["type"].as_str(),
                Some("response.completed" | "response.incomplete" | "response.failed")
            )
        })
        .count();
    assert_eq!(terminals, 1);
    assert!(p[0]["type"] == "response.created");
}

#[test]
fn claude_stream_to_responses_golden() {
    let out = run(
        StreamFromClaude::with_context(ResponsesContext::default(), 9),
        claude_stream(),
    );
    let p = payloads(&out);
    check_invariants(&p);
    assert!(
        out.iter()
            .all(|e| e.event.as_deref() == p[0].get("type").and(e.event.as_deref()))
    );
    let types: Vec<&str> = p.iter().map(|v| v["type"].as_str().unwrap()).collect();
    assert_eq!(
        types,
        vec![
            "response.created",
            "response.in_progress",
            "response.output_item.added",
            "response.reasoning_summary_part.added",
            "response.reasoning_summary_text.delta",
            "response.reasoning_summary_text.done",
            "response.reasoning_summary_part.done",
            "response.output_item.done",
            "response.output_item.added",
            "response.content_part.added",
            "response.output_text.delta",
            "response.output_text.done",
            "response.content_part.done",
            "response.output_item.done",
            "response.output_item.added",
            "response.function_call_arguments.delta",
            "response.function_call_arguments.delta",
            "response.function_call_arguments.done",
            "response.output_item.done",
            "response.output_item.added",
            "response.function_call_arguments.done",
            "response.output_item.done",
            "response.completed"
        ]
    );
    let done = p.last().unwrap();
    assert_eq!(done["response"]["id"], json!("resp_msg_01X"));
    assert_eq!(done["response"]["created_at"], json!(9));
    assert_eq!(
        done["response"]["usage"],
        json!({"input_tokens": 2060, "input_tokens_details": {"cached_tokens": 2048, "cache_write_tokens": 0},
        "output_tokens": 87, "output_tokens_details": {"reasoning_tokens": 0}, "total_tokens": 2147})
    );
    let output = done["response"]["output"].as_array().unwrap();
    assert_eq!(output.len(), 4);
    assert_eq!(
        output[2],
        json!({"type": "function_call", "id": "fc_msg_01X_2", "call_id": "toolu_01A", "name": "get_weather",
        "arguments": "{\"city\": \"Paris\"}", "status": "completed"})
    );
    assert_eq!(
        output[3]["arguments"],
        json!("{}"),
        "a call without arguments gets {{}}"
    );
    assert_eq!(p[20]["arguments"], json!("{}"));
    assert_split_invariant(StreamFromClaude::new, claude_stream());
}

#[test]
fn claude_stream_to_responses_errors_and_context() {
    let cut = claude_stream()
        .split("event: message_delta")
        .next()
        .unwrap();
    let p = payloads(&run(StreamFromClaude::new(), cut));
    check_invariants(&p);
    assert_eq!(p.last().unwrap()["type"], json!("response.failed"));
    let err = format!(
        "{}event: error\ndata: {{\"type\":\"error\",\"error\":{{\"type\":\"overloaded_error\",\"message\":\"Overloaded\"}}}}\n\n",
        claude_stream()
            .split("event: content_block_start")
            .next()
            .unwrap()
    );
    let p = payloads(&run(StreamFromClaude::new(), &err));
    assert_eq!(
        p.last().unwrap()["response"]["error"],
        json!({"code": "server_error", "message": "Overloaded"})
    );
    // namespaced tool restored from the client's request
    let ctx = ResponsesContext::from_request(
        &json!({"tools": [{"type": "namespace", "name": "ns", "tools": [{"type": "function", "name": "now"}]}]}),
    );
    let renamed = claude_stream().replace("\"name\":\"now\"", "\"name\":\"ns__now\"");
    let p = payloads(&run(StreamFromClaude::with_context(ctx, 0), &renamed));
    let item = &p.last().unwrap()["response"]["output"][3];
    assert_eq!(
        (item["name"].clone(), item["namespace"].clone()),
        (json!("now"), json!("ns"))
    );
    let mut c = StreamFromClaude::new();
    assert!(
        c.push(&SseEvent {
            data: "nope".into(),
            ..Default::default()
        })
        .is_err()
    );
}

/// Claude upstream → Responses client → (as upstream) → Claude client keeps text, calls, ids.
#[test]
fn responses_stream_round_trip() {
    let responses = to_sse(&run(StreamFromClaude::new(), claude_stream()));
    let claude = run(StreamToClaude::new(), &responses);
    let direct = run(
        crate::domain::convert::openai_chat::PassThrough,
        claude_stream(),
    );
    let strip = |evs: &[crate::domain::convert::OutEvent]| -> Vec<Value> {
        payloads(evs)
            .into_iter()
            .filter(|v| v["type"] != "ping" && v["delta"]["partial_json"] != "")
            .map(|mut v| {
                if v["type"] == "message_start" {
                    v["message"]["id"] = json!("x");
                    v["message"]["usage"] = json!(null);
                }
                v
            })
            .collect()
    };
    let a = strip(&claude);
    let b = strip(&direct);
    // same blocks, deltas (thinking signature aside: it is now an envelope) and stop reason
    assert_eq!(a.len(), b.len());
    for (x, y) in a.iter().zip(&b) {
        if x["delta"]["type"] == "signature_delta" {
            continue;
        }
        if x["type"] == "message_delta" {
            assert_eq!(x["delta"], y["delta"]);
            continue;
        }
        assert_eq!(x, y);
    }
}
