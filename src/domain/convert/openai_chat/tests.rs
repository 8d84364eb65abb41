use serde_json::{Value, json};

use super::test_util::*;
use super::*;
use crate::domain::convert::ConvertError;

// ---------- requests ----------

#[test]
fn chat_request_to_claude_golden() {
    let req = json!({
        "model": "gpt-x", "max_completion_tokens": 500, "temperature": 1.5, "top_p": 0.5,
        "stop": "END", "user": "u-1", "parallel_tool_calls": false,
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "developer", "content": [{"type": "text", "text": "Use tools."}]},
            {"role": "user", "content": [
                {"type": "text", "text": "Weather?"},
                {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA", "detail": "high"}},
                {"type": "image_url", "image_url": {"url": "https://x.test/a.jpg"}}]},
            {"role": "assistant", "content": "", "tool_calls": [
                {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}},
                {"id": "call.2", "type": "function", "function": {"name": "get_time", "arguments": ""}}]},
            {"role": "tool", "tool_call_id": "call_1", "content": "sunny"},
            {"role": "tool", "tool_call_id": "call.2", "content": [{"type": "text", "text": "noon"}]},
            {"role": "user", "content": "thanks"}
        ],
        "tools": [{"type": "function", "function": {"name": "get_weather", "description": "w",
                   "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}},
                  {"type": "function", "function": {"name": "get_time"}}],
        "tool_choice": "required"
    });
    let c = request_to_claude(&req).unwrap();
    let id2 = c["messages"][1]["content"][1]["id"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        id2.starts_with("call_2_") && id2.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
    );
    assert_eq!(
        c,
        json!({
            "model": "gpt-x", "max_tokens": 500, "temperature": 1.0, "stop_sequences": ["END"],
            "system": [{"type": "text", "text": "Be brief."}, {"type": "text", "text": "Use tools."}],
            "messages": [
                {"role": "user", "content": [
                    {"type": "text", "text": "Weather?"},
                    {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "AAAA"}},
                    {"type": "image", "source": {"type": "url", "url": "https://x.test/a.jpg"}}]},
                {"role": "assistant", "content": [
                    {"type": "tool_use", "id": "call_1", "name": "get_weather", "input": {"city": "Paris"}},
                    {"type": "tool_use", "id": id2, "name": "get_time", "input": {}}]},
                {"role": "user", "content": [
                    {"type": "tool_result", "tool_use_id": "call_1", "content": "sunny"},
                    {"type": "tool_result", "tool_use_id": id2, "content": "noon"},
                    {"type": "text", "text": "thanks"}]}
            ],
            "tools": [{"name": "get_weather", "description": "w", "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}}},
                      {"name": "get_time", "input_schema": {"type": "object", "properties": {}}}],
            "tool_choice": {"type": "any", "disable_parallel_tool_use": true},
            "metadata": {"user_id": "u-1"}
        })
    );
}

#[test]
fn chat_request_reasoning_effort_and_defaults() {
    let c = request_to_claude(
        &json!({"model": "m", "reasoning_effort": "high", "temperature": 0.2,
        "messages": [{"role": "user", "content": "hi"}], "stream": true}),
    )
    .unwrap();
    assert_eq!(c["max_tokens"], json!(DEFAULT_MAX_TOKENS));
    assert_eq!(
        c["thinking"],
        json!({"type": "enabled", "budget_tokens": 4096})
    );
    assert!(c.get("temperature").is_none());
    assert_eq!(c["stream"], json!(true));
    assert_eq!(
        c["messages"],
        json!([{"role": "user", "content": [{"type": "text", "text": "hi"}]}])
    );
}

#[test]
fn chat_request_bad_input() {
    let base = |extra: Value| {
        let mut r = json!({"model": "m", "messages": [{"role": "user", "content": "hi"}]});
        for (k, v) in extra.as_object().unwrap() {
            r[k] = v.clone();
        }
        request_to_claude(&r)
    };
    assert_eq!(
        base(json!({"n": 2})),
        Err(ConvertError::Unsupported {
            feature: "n > 1".into()
        })
    );
    assert!(base(json!({"n": 1})).is_ok());
    assert!(
        matches!(base(json!({"logprobs": true})), Err(ConvertError::Unsupported { feature }) if feature == "logprobs")
    );
    assert!(
        matches!(base(json!({"response_format": {"type": "json_object"}})), Err(ConvertError::Unsupported { feature }) if feature.contains("json_object"))
    );
    assert!(matches!(
        base(json!({"modalities": ["text", "audio"]})),
        Err(ConvertError::Unsupported { .. })
    ));
    // orphan tool result
    let r = request_to_claude(&json!({"model": "m", "messages": [
        {"role": "user", "content": "hi"}, {"role": "tool", "tool_call_id": "call_x", "content": "r"}]}));
    assert!(matches!(r, Err(ConvertError::Invalid { message, .. }) if message.contains("call_x")));
    // arguments not JSON: error naming the call
    let r = request_to_claude(
        &json!({"model": "m", "messages": [{"role": "user", "content": "hi"},
        {"role": "assistant", "tool_calls": [{"id": "call_9", "type": "function", "function": {"name": "f", "arguments": "{oops"}}]}]}),
    );
    assert!(matches!(r, Err(ConvertError::Invalid { message, .. }) if message.contains("call_9")));
    assert!(request_to_claude(&json!({"model": "m"})).is_err());
    assert!(request_to_claude(&json!([])).is_err());
    assert!(
        matches!(base(json!({"messages": [{"role": "user", "content": [{"type": "input_audio", "input_audio": {}}]}]})),
        Err(ConvertError::Unsupported { feature }) if feature == "audio input")
    );
}

fn claude_code_request() -> Value {
    json!({
        "model": "claude-opus-4-8", "max_tokens": 64000, "stream": true,
        "thinking": {"type": "adaptive"}, "output_config": {"effort": "high"},
        "context_management": {"edits": [{"type": "clear_thinking_20251015", "keep": "all"}]},
        "metadata": {"user_id": "{\"device_id\":\"abc\",\"account_uuid\":\"\",\"session_id\":\"sess-1\"}"},
        "system": [{"type": "text", "text": "billing"}, {"type": "text", "text": "You are Claude Code.", "cache_control": {"type": "ephemeral"}}],
        "tools": [{"name": "Bash", "description": "run", "input_schema": {"type": "object", "properties": {"cmd": {"type": "string"}}}},
                  {"type": "web_search_20250305", "name": "web_search"}],
        "messages": [
            {"role": "user", "content": [{"type": "text", "text": "<system-reminder>x</system-reminder>"}, {"type": "text", "text": "list files", "cache_control": {"type": "ephemeral"}}]},
            {"role": "system", "content": "mid-conversation note"},
            {"role": "assistant", "content": [
                {"type": "thinking", "thinking": "hmm", "signature": "sig"},
                {"type": "text", "text": "Running."},
                {"type": "tool_use", "id": "toolu_01", "name": "Bash", "input": {"cmd": "ls"}},
                {"type": "tool_use", "id": "toolu_02", "name": "Bash", "input": {"cmd": "pwd"}}]},
            {"role": "user", "content": [
                {"type": "tool_result", "tool_use_id": "toolu_01", "content": "a.txt", "cache_control": {"type": "ephemeral"}},
                {"type": "tool_result", "tool_use_id": "toolu_02", "is_error": true, "content": [
                    {"type": "text", "text": "denied"},
                    {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "QUJD"}}]},
                {"type": "text", "text": "go on"}]}
        ]
    })
}

#[test]
fn chat_request_from_claude_golden() {
    let o = request_from_claude(&claude_code_request()).unwrap();
    assert_eq!(
        o,
        json!({
            "model": "claude-opus-4-8", "max_completion_tokens": 64000, "stream": true,
            "stream_options": {"include_usage": true}, "reasoning_effort": "high",
            "prompt_cache_key": "sess-1",
            "messages": [
                {"role": "system", "content": "billing\n\nYou are Claude Code."},
                {"role": "user", "content": [{"type": "text", "text": "<system-reminder>x</system-reminder>"}, {"type": "text", "text": "list files"}]},
                {"role": "system", "content": "mid-conversation note"},
                {"role": "assistant", "content": "Running.", "tool_calls": [
                    {"id": "toolu_01", "type": "function", "function": {"name": "Bash", "arguments": "{\"cmd\":\"ls\"}"}},
                    {"id": "toolu_02", "type": "function", "function": {"name": "Bash", "arguments": "{\"cmd\":\"pwd\"}"}}]},
                {"role": "tool", "tool_call_id": "toolu_01", "content": "a.txt"},
                {"role": "tool", "tool_call_id": "toolu_02", "content": "Error: denied"},
                {"role": "user", "content": [
                    {"type": "text", "text": "[image from tool result toolu_02]"},
                    {"type": "image_url", "image_url": {"url": "data:image/png;base64,QUJD"}},
                    {"type": "text", "text": "go on"}]}
            ],
            "tools": [{"type": "function", "function": {"name": "Bash", "description": "run", "parameters": {"type": "object", "properties": {"cmd": {"type": "string"}}}}}]
        })
    );
}

#[test]
fn chat_request_from_claude_bad_input() {
    let r = request_from_claude(&json!({"model": "m", "max_tokens": 10, "messages": [
        {"role": "user", "content": "hi"}, {"role": "assistant", "content": "Sure,"}]}));
    assert_eq!(
        r,
        Err(ConvertError::Unsupported {
            feature: "assistant prefill".into()
        })
    );
    let r = request_from_claude(
        &json!({"model": "m", "max_tokens": 10, "stop_sequences": ["a","b","c","d","e"],
        "messages": [{"role": "user", "content": "hi"}]}),
    );
    assert!(
        matches!(r, Err(ConvertError::Unsupported { feature }) if feature.contains("stop sequences"))
    );
    let r = request_from_claude(
        &json!({"model": "m", "max_tokens": 10, "messages": [{"role": "user", "content": [
        {"type": "image", "source": {"type": "file", "file_id": "f_1"}}]}]}),
    );
    assert!(matches!(r, Err(ConvertError::Unsupported { feature }) if feature.contains("file_id")));
}

/// Claude → Chat → Claude keeps text, tool calls, ids, results and their pairing.
#[test]
fn chat_request_round_trip_property() {
    let mut rng = Rng(42);
    for round in 0..200 {
        let mut messages = vec![
            json!({"role": "user", "content": [{"type": "text", "text": format!("q{round}")}]}),
        ];
        let turns = 1 + rng.below(3);
        for t in 0..turns {
            let calls = rng.below(4);
            let mut content = Vec::new();
            if rng.below(2) == 0 || calls == 0 {
                content.push(json!({"type": "text", "text": format!("a{t} ü \"x\"")}));
            }
            let ids: Vec<String> = (0..calls)
                .map(|c| format!("toolu_{round}_{t}_{c}"))
                .collect();
            for (c, id) in ids.iter().enumerate() {
                content.push(
                    json!({"type": "tool_use", "id": id, "name": format!("f{c}"),
                    "input": {"n": rng.below(100), "s": "v", "nested": {"a": [1, 2]}}}),
                );
            }
            messages.push(json!({"role": "assistant", "content": content}));
            let mut user = Vec::new();
            for id in &ids {
                user.push(
                    json!({"type": "tool_result", "tool_use_id": id, "content": format!("r-{id}")}),
                );
            }
            user.push(json!({"type": "text", "text": format!("next {t}")}));
            messages.push(json!({"role": "user", "content": user}));
        }
        let claude = json!({"model": "m", "max_tokens": 100, "system": [{"type": "text", "text": "sys"}], "messages": messages});
        let back = request_to_claude(&request_from_claude(&claude).unwrap()).unwrap();
        assert_eq!(back["messages"], claude["messages"], "round {round}");
        assert_eq!(back["system"], claude["system"]);
    }
}

// ---------- responses ----------

fn chat_response() -> Value {
    json!({"id": "chatcmpl-abc", "object": "chat.completion", "created": 1764200000, "model": "gpt-x",
        "choices": [{"index": 0, "finish_reason": "tool_calls", "logprobs": null,
            "message": {"role": "assistant", "content": "Let me check.", "refusal": null,
                "tool_calls": [{"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}}]}}],
        "usage": {"prompt_tokens": 2060, "completion_tokens": 87, "total_tokens": 2147,
            "prompt_tokens_details": {"cached_tokens": 2048}, "completion_tokens_details": {"reasoning_tokens": 40}}})
}

#[test]
fn chat_response_to_claude_golden() {
    assert_eq!(
        response_to_claude(&chat_response()).unwrap(),
        json!({
        "id": "msg_chatcmpl-abc", "type": "message", "role": "assistant", "model": "gpt-x",
        "content": [{"type": "text", "text": "Let me check."},
                    {"type": "tool_use", "id": "call_1", "name": "get_weather", "input": {"city": "Paris"}}],
        "stop_reason": "tool_use", "stop_sequence": null,
        "usage": {"input_tokens": 12, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 2048, "output_tokens": 87}})
    );
    let mut r = chat_response();
    r["choices"][0]["finish_reason"] = json!("length");
    r["choices"][0]["message"]["tool_calls"] = Value::Null;
    assert_eq!(
        response_to_claude(&r).unwrap()["stop_reason"],
        json!("max_tokens")
    );
    r["choices"][0]["finish_reason"] = json!("content_filter");
    assert_eq!(
        response_to_claude(&r).unwrap()["stop_reason"],
        json!("refusal")
    );
    assert!(response_to_claude(&json!({"error": {"message": "x"}})).is_err());
    assert!(response_to_claude(&json!({"choices": []})).is_err());
}

#[test]
fn chat_response_from_claude_golden() {
    let claude = json!({"id": "msg_01X", "type": "message", "role": "assistant", "model": "claude-x",
        "content": [{"type": "thinking", "thinking": "…", "signature": "s"}, {"type": "text", "text": "Let me check."},
                    {"type": "tool_use", "id": "toolu_01A", "name": "get_weather", "input": {"city": "Paris"}}],
        "stop_reason": "tool_use", "stop_sequence": null,
        "usage": {"input_tokens": 12, "cache_creation_input_tokens": 5, "cache_read_input_tokens": 2048, "output_tokens": 87}});
    assert_eq!(
        response_from_claude_at(&claude, 7).unwrap(),
        json!({
        "id": "chatcmpl-msg_01X", "object": "chat.completion", "created": 7, "model": "claude-x",
        "choices": [{"index": 0, "logprobs": null, "finish_reason": "tool_calls", "message": {
            "role": "assistant", "content": "Let me check.", "refusal": null,
            "tool_calls": [{"id": "toolu_01A", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}}]}}],
        "usage": {"prompt_tokens": 2065, "completion_tokens": 87, "total_tokens": 2152,
                  "prompt_tokens_details": {"cached_tokens": 2048, "cache_write_tokens": 5}}})
    );
    // round trip back keeps ids, text and the disjoint usage buckets
    let back = response_to_claude(&response_from_claude(&claude).unwrap()).unwrap();
    assert_eq!(back["content"][1], claude["content"][2]);
    assert_eq!(back["usage"], claude["usage"]);
}

#[test]
fn usage_helpers_and_errors() {
    let u = json!({"prompt_tokens": 100, "completion_tokens": 5, "prompt_tokens_details": {"cached_tokens": 200}});
    assert_eq!(
        usage_to_claude(&u)["input_tokens"],
        json!(0),
        "never below zero"
    );
    assert_eq!(
        usage_from_claude(&json!({"input_tokens": 3, "output_tokens": 4}))["total_tokens"],
        json!(7)
    );
    let e = error_from_claude(
        429,
        &json!({"type": "error", "error": {"type": "rate_limit_error", "message": "slow"}}),
    );
    assert_eq!(
        e,
        json!({"error": {"message": "slow", "type": "rate_limit_error", "param": null, "code": "rate_limit_exceeded"}})
    );
    assert_eq!(
        error_from_claude(401, &json!({}))["error"]["code"],
        json!("invalid_api_key")
    );
}
