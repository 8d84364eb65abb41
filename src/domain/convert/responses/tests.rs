use serde_json::{Value, json};

use super::*;
use crate::domain::convert::ConvertError;
use crate::domain::convert::openai_chat::test_util::Rng;

fn codex_request() -> Value {
    json!({
        "model": "gpt-5", "stream": true, "store": false, "include": ["reasoning.encrypted_content"],
        "reasoning": {"summary": "auto"}, "parallel_tool_calls": true, "tool_choice": "auto",
        "prompt_cache_key": "sess-1", "client_metadata": {"session_id": "sess-1"},
        "input": [
            {"type": "message", "id": "msg_a", "role": "developer", "content": [{"type": "input_text", "text": "permissions"}]},
            {"type": "message", "id": "msg_b", "role": "developer", "content": [{"type": "input_text", "text": "skills 1"}, {"type": "input_text", "text": " skills 2"}]},
            {"type": "message", "id": "msg_c", "role": "user", "content": [{"type": "input_text", "text": "<environment_context>"}]},
            {"type": "message", "id": "msg_d", "role": "user", "content": [{"type": "input_text", "text": "list files"}]},
            {"type": "reasoning", "id": "rs_1", "summary": [], "encrypted_content": "gAAAA-openai-original"},
            {"type": "function_call", "id": "fc_1", "call_id": "call_1", "name": "exec_command", "arguments": "{\"cmd\":\"ls\"}", "status": "completed"},
            {"type": "function_call", "id": "fc_2", "call_id": "call_2", "name": "spawn", "namespace": "multi_agent_v1", "arguments": "{}"},
            {"type": "function_call_output", "id": "fco_1", "call_id": "call_1", "output": "a.txt"},
            {"type": "function_call_output", "id": "fco_2", "call_id": "call_2", "output": [{"type": "input_text", "text": "ok"}]}
        ],
        "tools": [
            {"type": "function", "name": "exec_command", "description": "run", "strict": false, "parameters": {"type": "object", "properties": {"cmd": {"type": "string"}}}},
            {"type": "namespace", "name": "multi_agent_v1", "description": "agents", "tools": [{"type": "function", "name": "spawn", "parameters": {"type": "object", "properties": {}}}]},
            {"type": "web_search", "external_web_access": false}
        ]
    })
}

#[test]
fn responses_request_to_claude_golden() {
    let c = request_to_claude(&codex_request()).unwrap();
    assert_eq!(
        c,
        json!({
            "model": "gpt-5", "max_tokens": crate::domain::convert::openai_chat::DEFAULT_MAX_TOKENS, "stream": true,
            "system": [{"type": "text", "text": "permissions"}, {"type": "text", "text": "skills 1 skills 2"}],
            "messages": [
                {"role": "user", "content": [{"type": "text", "text": "<environment_context>"}, {"type": "text", "text": "list files"}]},
                {"role": "assistant", "content": [
                    {"type": "tool_use", "id": "call_1", "name": "exec_command", "input": {"cmd": "ls"}},
                    {"type": "tool_use", "id": "call_2", "name": "multi_agent_v1__spawn", "input": {}}]},
                {"role": "user", "content": [
                    {"type": "tool_result", "tool_use_id": "call_1", "content": "a.txt"},
                    {"type": "tool_result", "tool_use_id": "call_2", "content": [{"type": "text", "text": "ok"}]}]}
            ],
            "tools": [
                {"name": "exec_command", "description": "run", "input_schema": {"type": "object", "properties": {"cmd": {"type": "string"}}}},
                {"name": "multi_agent_v1__spawn", "input_schema": {"type": "object", "properties": {}}}],
            "tool_choice": {"type": "auto"}
        })
    );
    let ctx = ResponsesContext::from_request(&codex_request());
    assert_eq!(
        ctx.namespaced.get("multi_agent_v1__spawn"),
        Some(&("multi_agent_v1".to_string(), "spawn".to_string()))
    );
}

#[test]
fn responses_request_variants() {
    let c = request_to_claude(&json!({"model": "m", "input": "hi", "instructions": "be nice", "max_output_tokens": 300,
        "reasoning": {"effort": "medium"}, "text": {"format": {"type": "json_schema", "name": "x", "schema": {"type": "object"}}},
        "parallel_tool_calls": false, "user": "u1",
        "tools": [{"type": "custom", "name": "apply_patch", "description": "patch"}], "tool_choice": {"type": "custom", "name": "apply_patch"}})).unwrap();
    assert_eq!(c["system"], json!([{"type": "text", "text": "be nice"}]));
    assert_eq!(
        c["messages"],
        json!([{"role": "user", "content": [{"type": "text", "text": "hi"}]}])
    );
    assert_eq!(c["max_tokens"], json!(300));
    assert_eq!(
        c["output_config"],
        json!({"format": {"type": "json_schema", "schema": {"type": "object"}}})
    );
    assert_eq!(
        c["tools"][0]["input_schema"]["properties"]["input"]["type"],
        json!("string")
    );
    assert_eq!(
        c["tool_choice"],
        json!({"type": "tool", "name": "apply_patch", "disable_parallel_tool_use": true})
    );
    assert!(
        c.get("thinking").is_none(),
        "forced tool choice turns thinking off"
    );
    assert_eq!(c["metadata"], json!({"user_id": "u1"}));
    // single item object, images
    let c = request_to_claude(
        &json!({"model": "m", "reasoning": {"effort": "low"}, "input": {"role": "user", "content": [
        {"type": "input_image", "image_url": "data:image/jpeg;base64,/9j/", "detail": "auto"}]}}),
    )
    .unwrap();
    assert_eq!(
        c["messages"][0]["content"][0]["source"],
        json!({"type": "base64", "media_type": "image/jpeg", "data": "/9j/"})
    );
    assert_eq!(
        c["thinking"],
        json!({"type": "enabled", "budget_tokens": 1024})
    );
}

#[test]
fn responses_request_bad_input() {
    let r = |extra: Value| {
        let mut q = json!({"model": "m", "input": "hi"});
        for (k, v) in extra.as_object().unwrap() {
            q[k] = v.clone();
        }
        request_to_claude(&q)
    };
    assert_eq!(
        r(json!({"previous_response_id": "resp_1"})),
        Err(ConvertError::Unsupported {
            feature: "previous_response_id".into()
        })
    );
    assert!(matches!(
        r(json!({"conversation": "c"})),
        Err(ConvertError::Unsupported { .. })
    ));
    assert!(
        matches!(r(json!({"input": [{"type": "item_reference", "id": "x"}]})), Err(ConvertError::Unsupported { feature }) if feature == "item_reference")
    );
    assert!(matches!(
        r(json!({"text": {"format": {"type": "json_object"}}})),
        Err(ConvertError::Unsupported { .. })
    ));
    assert!(
        matches!(r(json!({"input": [{"type": "function_call_output", "call_id": "zz", "output": "x"}]})),
        Err(ConvertError::Invalid { message, .. }) if message.contains("zz"))
    );
    assert!(matches!(
        r(json!({"input": 5})),
        Err(ConvertError::Invalid { .. })
    ));
    assert!(matches!(
        r(
            json!({"input": [{"type": "function_call", "call_id": "c", "name": "f", "arguments": "[1"}]})
        ),
        Err(ConvertError::Invalid { .. })
    ));
}

#[test]
fn responses_request_from_claude_golden() {
    let claude = json!({
        "model": "claude-x", "max_tokens": 8, "stream": true, "temperature": 0.5,
        "thinking": {"type": "enabled", "budget_tokens": 5000},
        "metadata": {"user_id": "{\"session_id\":\"s-9\"}"},
        "system": "sys",
        "tools": [{"name": "f", "input_schema": {"type": "object"}}],
        "tool_choice": {"type": "tool", "name": "f"},
        "messages": [
            {"role": "user", "content": [{"type": "text", "text": "hi"}, {"type": "image", "source": {"type": "url", "url": "https://x/a.png"}}]},
            {"role": "system", "content": "note"},
            {"role": "assistant", "content": [{"type": "thinking", "thinking": "t", "signature": "anthropic-sig"},
                {"type": "text", "text": "calling"}, {"type": "tool_use", "id": "toolu_1", "name": "f", "input": {"a": 1}}]},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_1", "content": "done"}, {"type": "text", "text": "and?"}]}
        ]
    });
    assert_eq!(
        request_from_claude(&claude).unwrap(),
        json!({
            "model": "claude-x", "instructions": "sys", "max_output_tokens": 16, "temperature": 0.5, "stream": true, "store": false,
            "reasoning": {"effort": "high", "summary": "auto"}, "include": ["reasoning.encrypted_content"],
            "prompt_cache_key": "s-9",
            "tools": [{"type": "function", "name": "f", "parameters": {"type": "object"}, "strict": false}],
            "tool_choice": {"type": "function", "name": "f"},
            "input": [
                {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "hi"}, {"type": "input_image", "image_url": "https://x/a.png", "detail": "auto"}]},
                {"type": "message", "role": "developer", "content": [{"type": "input_text", "text": "note"}]},
                {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "calling"}]},
                {"type": "function_call", "call_id": "toolu_1", "name": "f", "arguments": "{\"a\":1}"},
                {"type": "function_call_output", "call_id": "toolu_1", "output": "done"},
                {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "and?"}]}
            ]
        })
    );
    let bad = json!({"model": "m", "max_tokens": 5, "stop_sequences": ["x"], "messages": [{"role": "user", "content": "hi"}]});
    assert!(
        matches!(request_from_claude(&bad), Err(ConvertError::Unsupported { feature }) if feature.contains("stop_sequences"))
    );
}

/// Claude → Responses → Claude keeps text, tool calls, ids and results.
#[test]
fn responses_request_round_trip_property() {
    let mut rng = Rng(99);
    for round in 0..200 {
        let mut messages = vec![
            json!({"role": "user", "content": [{"type": "text", "text": format!("q{round}")}]}),
        ];
        for t in 0..1 + rng.below(3) {
            let calls = rng.below(4);
            let mut content = Vec::new();
            if calls == 0 || rng.below(2) == 0 {
                content.push(json!({"type": "text", "text": format!("a{t} ü")}));
            }
            let ids: Vec<String> = (0..calls)
                .map(|c| format!("toolu_{round}_{t}_{c}"))
                .collect();
            for id in &ids {
                content.push(json!({"type": "tool_use", "id": id, "name": "f", "input": {"k": rng.below(9), "s": "\"q\""}}));
            }
            messages.push(json!({"role": "assistant", "content": content}));
            let mut user: Vec<Value> = ids.iter().map(|id| json!({"type": "tool_result", "tool_use_id": id, "content": format!("r{id}")})).collect();
            user.push(json!({"type": "text", "text": "more"}));
            messages.push(json!({"role": "user", "content": user}));
        }
        let claude = json!({"model": "m", "max_tokens": 100, "system": [{"type": "text", "text": "sys"}], "messages": messages});
        let back = request_to_claude(&request_from_claude(&claude).unwrap()).unwrap();
        assert_eq!(back["messages"], claude["messages"], "round {round}");
        assert_eq!(back["system"], claude["system"]);
    }
}

#[test]
fn responses_response_golden_and_round_trip() {
    let resp = json!({"id": "resp_01", "object": "response", "created_at": 1, "status": "completed", "model": "gpt-x",
        "output": [
            {"type": "reasoning", "id": "rs_01", "summary": [{"type": "summary_text", "text": "Need weather."}], "encrypted_content": "gAAAA"},
            {"type": "message", "id": "msg_01", "status": "completed", "role": "assistant", "content": [{"type": "output_text", "text": "Let me check.", "annotations": []}]},
            {"type": "function_call", "id": "fc_01", "call_id": "call_01", "name": "get_weather", "arguments": "{\"city\":\"Paris\"}", "status": "completed"}],
        "usage": {"input_tokens": 2060, "input_tokens_details": {"cached_tokens": 2048, "cache_write_tokens": 0},
                  "output_tokens": 87, "output_tokens_details": {"reasoning_tokens": 40}, "total_tokens": 2147}});
    let c = response_to_claude(&resp).unwrap();
    assert_eq!(
        c["content"][1],
        json!({"type": "text", "text": "Let me check."})
    );
    assert_eq!(
        c["content"][2],
        json!({"type": "tool_use", "id": "call_01", "name": "get_weather", "input": {"city": "Paris"}})
    );
    assert_eq!(c["stop_reason"], json!("tool_use"));
    assert_eq!(
        c["usage"],
        json!({"input_tokens": 12, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 2048, "output_tokens": 87})
    );
    assert_eq!(c["content"][0]["thinking"], json!("Need weather."));
    // The OpenAI reasoning survives a Claude client's replay back to a Responses upstream.
    let replay = json!({"model": "m", "max_tokens": 100, "messages": [{"role": "user", "content": "q"},
        {"role": "assistant", "content": c["content"]}, {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "call_01", "content": "sunny"}]}]});
    let r = request_from_claude(&replay).unwrap();
    assert_eq!(
        r["input"][1],
        json!({"type": "reasoning", "id": "rs_01", "summary": [{"type": "summary_text", "text": "Need weather."}], "encrypted_content": "gAAAA"})
    );
    // Claude → Responses → Claude keeps blocks (thinking with its Anthropic signature) and usage.
    let claude = json!({"id": "msg_1", "type": "message", "role": "assistant", "model": "claude-x",
        "content": [{"type": "thinking", "thinking": "hmm", "signature": "SIG"}, {"type": "text", "text": "hi"},
                    {"type": "tool_use", "id": "toolu_1", "name": "f", "input": {"a": [1]}}],
        "stop_reason": "tool_use", "usage": {"input_tokens": 5, "cache_creation_input_tokens": 7, "cache_read_input_tokens": 9, "output_tokens": 3}});
    let r = response_from_claude(&claude).unwrap();
    assert_eq!(r["status"], json!("completed"));
    assert_eq!(
        r["usage"],
        json!({"input_tokens": 21, "input_tokens_details": {"cached_tokens": 9, "cache_write_tokens": 7},
        "output_tokens": 3, "output_tokens_details": {"reasoning_tokens": 0}, "total_tokens": 24})
    );
    assert_eq!(
        r["output"][2],
        json!({"type": "function_call", "id": "fc_msg_1_2", "call_id": "toolu_1", "name": "f", "arguments": "{\"a\":[1]}", "status": "completed"})
    );
    let back = response_to_claude(&r).unwrap();
    assert_eq!(
        back["content"].as_array().unwrap()[1..],
        claude["content"].as_array().unwrap()[1..]
    );
    assert_eq!(back["usage"], claude["usage"]);
    // the reasoning item replays to Claude as the original thinking block
    let next = request_to_claude(&json!({"model": "m", "input": [{"role": "user", "content": "q"}, r["output"][0].clone(),
        r["output"][1].clone(), r["output"][2].clone(), {"type": "function_call_output", "call_id": "toolu_1", "output": "x"}]})).unwrap();
    assert_eq!(next["messages"][1]["content"][0], claude["content"][0]);
    let mut inc = claude.clone();
    inc["stop_reason"] = json!("max_tokens");
    let r = response_from_claude(&inc).unwrap();
    assert_eq!(
        (r["status"].clone(), r["incomplete_details"].clone()),
        (json!("incomplete"), json!({"reason": "max_output_tokens"}))
    );
    assert!(
        response_to_claude(&json!({"status": "failed", "error": {"message": "x"}, "output": []}))
            .is_err()
    );
    assert_eq!(
        error_from_claude(500, &json!({}))["error"]["type"],
        json!("server_error")
    );
    assert_eq!(
        usage_to_claude(&json!({"input_tokens": 10, "input_tokens_details": {"cached_tokens": 4}}))
            ["input_tokens"],
        json!(6)
    );
    assert_eq!(
        usage_from_claude(&json!({"input_tokens": 1, "output_tokens": 2}))["total_tokens"],
        json!(3)
    );
}
