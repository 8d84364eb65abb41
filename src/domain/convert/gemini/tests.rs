//! Golden, round-trip and bad-input tests for the Gemini request/response converters.

use serde_json::{Value, json};

use super::super::ConvertError;
use super::*;

// ---------------------------------------------------------------- requests: Gemini → Claude

#[test]
fn golden_request_to_claude() {
    let g = json!({
        "systemInstruction": {"parts": [{"text": "Be brief."}]},
        "contents": [
            {"role": "system", "parts": [{"text": "Folded system."}]},
            {"role": "user", "parts": [
                {"text": "Weather in Paris and Rome?"},
                {"inlineData": {"mimeType": "image/png", "data": "iVBOR"}},
                {"fileData": {"mimeType": "image/jpeg", "fileUri": "https://example.com/a.jpg"}}
            ]},
            {"role": "model", "parts": [
                {"text": "thinking…", "thought": true},
                {"functionCall": {"name": "get_weather", "args": {"city": "Paris"}}, "thoughtSignature": "CiQB"},
                {"functionCall": {"name": "get_weather", "args": {"city": "Rome"}}}
            ]},
            {"role": "user", "parts": [
                {"functionResponse": {"name": "get_weather", "response": {"output": "sunny"}}},
                {"functionResponse": {"name": "get_weather", "response": {"error": "timeout"}}}
            ]}
        ],
        "tools": [{"functionDeclarations": [{
            "name": "get_weather", "description": "Weather",
            "parameters": {"type": "OBJECT", "properties": {"city": {"type": "STRING"}}, "required": ["city"]}
        }]}, {"googleSearch": {}}],
        "toolConfig": {"functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": ["get_weather"]}},
        "generationConfig": {"maxOutputTokens": 1000, "temperature": 1.5, "topP": 0.9, "topK": 40, "stopSequences": ["END"]},
        "safetySettings": [{"category": "HARM_CATEGORY_HATE_SPEECH", "threshold": "BLOCK_NONE"}]
    });
    let c = request_to_claude_with_model(&g, "claude-x").unwrap();
    let want = json!({
        "model": "claude-x",
        "system": [{"type": "text", "text": "Be brief."}, {"type": "text", "text": "Folded system."}],
        "messages": [
            {"role": "user", "content": [
                {"type": "text", "text": "Weather in Paris and Rome?"},
                {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBOR"}},
                {"type": "image", "source": {"type": "url", "url": "https://example.com/a.jpg"}}
            ]},
            {"role": "assistant", "content": [
                {"type": "tool_use", "id": "toolu_gemini_0", "name": "get_weather", "input": {"city": "Paris"}},
                {"type": "tool_use", "id": "toolu_gemini_1", "name": "get_weather", "input": {"city": "Rome"}}
            ]},
            {"role": "user", "content": [
                {"type": "tool_result", "tool_use_id": "toolu_gemini_0", "content": "sunny"},
                {"type": "tool_result", "tool_use_id": "toolu_gemini_1", "content": "timeout", "is_error": true}
            ]}
        ],
        "tools": [{"name": "get_weather", "description": "Weather", "input_schema":
            {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}],
        "tool_choice": {"type": "tool", "name": "get_weather"},
        "max_tokens": 1000,
        "temperature": 1.0,
        "top_k": 40,
        "stop_sequences": ["END"]
    });
    assert_eq!(c, want);
}

#[test]
fn request_to_claude_ids_preserved_and_matched_by_id() {
    let g = json!({"contents": [
        {"role": "user", "parts": [{"text": "go"}]},
        {"role": "model", "parts": [
            {"functionCall": {"id": "call-a", "name": "f", "args": {}}},
            {"functionCall": {"id": "call b!", "name": "f", "args": {}}}
        ]},
        {"role": "user", "parts": [
            {"functionResponse": {"id": "call b!", "name": "f", "response": {"x": 1}}},
            {"functionResponse": {"id": "call-a", "name": "f", "response": {"output": {"ok": true}}}},
            {"text": "and now?"}
        ]}
    ]});
    let c = request_to_claude(&g).unwrap();
    let calls = &c["messages"][1]["content"];
    assert_eq!(calls[0]["id"], "call-a");
    let b_id = calls[1]["id"].as_str().unwrap();
    assert!(
        b_id.starts_with("call_b__")
            && b_id
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    );
    let res = &c["messages"][2]["content"];
    assert_eq!(res[0]["tool_use_id"], b_id);
    assert_eq!(res[0]["content"], "{\"x\":1}");
    assert_eq!(res[1]["tool_use_id"], "call-a");
    assert_eq!(res[1]["content"], "{\"ok\":true}");
    assert_eq!(res[2]["type"], "text");
    assert!(c.get("model").is_none(), "the caller inserts the model");
}

#[test]
fn request_to_claude_same_name_results_match_in_order_and_tool_results_first() {
    let g = json!({"contents": [
        {"role": "user", "parts": [{"text": "go"}]},
        {"role": "model", "parts": [{"functionCall": {"name": "a", "args": {}}}, {"functionCall": {"name": "b", "args": {}}}]},
        {"role": "user", "parts": [{"text": "note"}]},
        {"role": "user", "parts": [
            {"functionResponse": {"name": "b", "response": {"output": "B"}}},
            {"functionResponse": {"name": "a", "response": {"output": "A"}}}
        ]}
    ]});
    let c = request_to_claude(&g).unwrap();
    let res = &c["messages"][2]["content"];
    assert_eq!(res[0]["tool_use_id"], "toolu_gemini_1");
    assert_eq!(res[1]["tool_use_id"], "toolu_gemini_0");
    assert_eq!(res[2], json!({"type": "text", "text": "note"}));
}

#[test]
fn request_to_claude_thinking_config() {
    let base = |tc: Value| {
        json!({"contents": [{"parts": [{"text": "hi"}]}],
        "generationConfig": {"maxOutputTokens": 4000, "temperature": 0.5, "thinkingConfig": tc}})
    };
    let c = request_to_claude(&base(json!({"thinkingBudget": 500}))).unwrap();
    assert_eq!(
        c["thinking"],
        json!({"type": "enabled", "budget_tokens": 1024})
    );
    assert!(c.get("temperature").is_none());
    let c = request_to_claude(&base(json!({"thinkingBudget": 9000}))).unwrap();
    assert_eq!(c["thinking"]["budget_tokens"], 3999);
    let c = request_to_claude(&base(json!({"thinkingBudget": 0}))).unwrap();
    assert!(c.get("thinking").is_none());
    assert_eq!(c["temperature"], 0.5);
    let c = request_to_claude(&base(json!({"thinkingBudget": -1}))).unwrap();
    assert_eq!(c["thinking"], json!({"type": "adaptive"}));
    let c = request_to_claude(&base(json!({"thinkingLevel": "LOW"}))).unwrap();
    assert_eq!(c["output_config"], json!({"effort": "low"}));
}

#[test]
fn request_to_claude_code_assist_envelope_and_defaults() {
    let g = json!({"model": "gemini-x", "project": "p", "request": {"contents": [{"role": "user", "parts": [{"text": "hi"}]}]}});
    let c = request_to_claude(&g).unwrap();
    assert_eq!(c["max_tokens"], DEFAULT_MAX_TOKENS);
    assert_eq!(c["messages"][0]["content"][0]["text"], "hi");
}

#[test]
fn request_to_claude_structured_output() {
    let g = json!({"contents": [{"parts": [{"text": "hi"}]}], "generationConfig": {
        "responseMimeType": "application/json", "responseSchema": {"type": "OBJECT", "properties": {"a": {"type": "INTEGER"}}}}});
    let c = request_to_claude(&g).unwrap();
    assert_eq!(
        c["output_config"]["format"]["schema"]["properties"]["a"]["type"],
        "integer"
    );
}

#[test]
fn request_to_claude_replays_claude_thinking_envelope() {
    let g = json!({"contents": [
        {"role": "user", "parts": [{"text": "q"}]},
        {"role": "model", "parts": [
            {"text": "Let me ", "thought": true},
            {"text": "think", "thought": true},
            {"text": "", "thought": true, "thoughtSignature": format!("{ANTHROPIC_SIGNATURE_PREFIX}SIG")},
            {"text": "answer"}
        ]},
        {"role": "user", "parts": [{"text": "more"}]}
    ]});
    let c = request_to_claude(&g).unwrap();
    assert_eq!(
        c["messages"][1]["content"][0],
        json!({"type": "thinking", "thinking": "Let me think", "signature": "SIG"})
    );
    assert_eq!(
        c["messages"][1]["content"][1],
        json!({"type": "text", "text": "answer"})
    );
}

// ---------------------------------------------------------------- requests: Claude → Gemini

#[test]
fn golden_request_from_claude() {
    let c = json!({
        "model": "claude-x", "max_tokens": 2048, "temperature": 0.2, "top_p": 0.9, "top_k": 5,
        "stop_sequences": ["STOP"], "stream": true, "metadata": {"user_id": "u"},
        "system": [{"type": "text", "text": "sys", "cache_control": {"type": "ephemeral"}}],
        "messages": [
            {"role": "system", "content": "inline sys"},
            {"role": "user", "content": [
                {"type": "text", "text": "see"},
                {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "AAA"}},
                {"type": "image", "source": {"type": "url", "url": "https://x.test/p.webp?x=1"}}
            ]},
            {"role": "assistant", "content": [
                {"type": "thinking", "thinking": "hmm", "signature": "anthropic-sig"},
                {"type": "text", "text": "calling"},
                {"type": "tool_use", "id": "toolu_01A", "name": "get_weather", "input": {"city": "Paris"}}
            ]},
            {"role": "user", "content": [
                {"type": "text", "text": "here"},
                {"type": "tool_result", "tool_use_id": "toolu_01A", "content": [{"type": "text", "text": "sunny"}]}
            ]}
        ],
        "tools": [
            {"name": "get_weather", "description": "W", "input_schema": {"$schema": "http://json-schema.org/draft-07/schema#",
                "type": "object", "additionalProperties": false,
                "properties": {"city": {"type": "string", "const": "Paris"}}, "required": ["city"]}},
            {"name": "noargs", "input_schema": {"type": "object", "properties": {}}},
            {"type": "web_search_20250305", "name": "web_search"}
        ],
        "tool_choice": {"type": "auto", "disable_parallel_tool_use": true},
        "thinking": {"type": "enabled", "budget_tokens": 1024}
    });
    let g = request_from_claude(&c).unwrap();
    let want = json!({
        "contents": [
            {"role": "user", "parts": [
                {"text": "see"},
                {"inlineData": {"mimeType": "image/png", "data": "AAA"}},
                {"fileData": {"fileUri": "https://x.test/p.webp?x=1", "mimeType": "image/webp"}}
            ]},
            {"role": "model", "parts": [
                {"text": "calling"},
                {"functionCall": {"name": "get_weather", "args": {"city": "Paris"}, "id": "toolu_01A"},
                 "thoughtSignature": DUMMY_THOUGHT_SIGNATURE}
            ]},
            {"role": "user", "parts": [
                {"functionResponse": {"name": "get_weather", "response": {"output": "sunny"}, "id": "toolu_01A"}},
                {"text": "here"}
            ]}
        ],
        "systemInstruction": {"parts": [{"text": "sys"}, {"text": "inline sys"}]},
        "tools": [{"functionDeclarations": [
            {"name": "get_weather", "description": "W", "parameters":
                {"type": "object", "properties": {"city": {"type": "string", "enum": ["Paris"]}}, "required": ["city"]}},
            {"name": "noargs"}
        ]}],
        "toolConfig": {"functionCallingConfig": {"mode": "AUTO"}},
        "generationConfig": {"maxOutputTokens": 2048, "temperature": 0.2, "topP": 0.9, "topK": 5,
            "stopSequences": ["STOP"], "thinkingConfig": {"thinkingBudget": 1024, "includeThoughts": true}}
    });
    assert_eq!(g, want);
}

#[test]
fn request_from_claude_restores_gemini_signature_and_strips_synthetic_ids() {
    let c = json!({"model": "m", "max_tokens": 10, "messages": [
        {"role": "user", "content": "q"},
        {"role": "assistant", "content": [
            {"type": "thinking", "thinking": "", "signature": format!("{GEMINI_SIGNATURE_PREFIX}REAL")},
            {"type": "tool_use", "id": "toolu_gemini_ab12cd34_0", "name": "f", "input": {}}
        ]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_gemini_ab12cd34_0", "content": "ok", "is_error": true}]}
    ]});
    let g = request_from_claude(&c).unwrap();
    assert_eq!(
        g["contents"][1]["parts"][0],
        json!({"functionCall": {"name": "f", "args": {}}, "thoughtSignature": "REAL"})
    );
    assert_eq!(
        g["contents"][2]["parts"][0],
        json!({"functionResponse": {"name": "f", "response": {"error": "ok"}}})
    );
}

#[test]
fn request_from_claude_tool_choice_variants() {
    let mk = |tc: Value| {
        json!({"model": "m", "max_tokens": 1, "messages": [{"role": "user", "content": "x"}],
        "tools": [{"name": "f", "input_schema": {"type": "object"}}], "tool_choice": tc})
    };
    let cfg =
        |tc| request_from_claude(&mk(tc)).unwrap()["toolConfig"]["functionCallingConfig"].clone();
    assert_eq!(cfg(json!({"type": "any"})), json!({"mode": "ANY"}));
    assert_eq!(cfg(json!({"type": "none"})), json!({"mode": "NONE"}));
    assert_eq!(
        cfg(json!({"type": "tool", "name": "f"})),
        json!({"mode": "ANY", "allowedFunctionNames": ["f"]})
    );
}

#[test]
fn schema_sanitizer_handles_refs_nullable_and_bounds() {
    let s = json!({
        "$schema": "x", "type": "object", "additionalProperties": false,
        "$defs": {"Pt": {"type": "object", "properties": {"x": {"type": "number", "exclusiveMinimum": 0}}}},
        "properties": {
            "p": {"$ref": "#/$defs/Pt", "description": "point"},
            "n": {"type": ["string", "null"], "examples": ["a"]},
            "u": {"oneOf": [{"type": "integer", "multipleOf": 2}, {"type": "boolean"}]},
            "e": {"enum": [1, 2]},
            "loop": {"$ref": "#"}
        },
        "required": ["p", "missing"]
    });
    let g = sanitize_schema(&s);
    assert_eq!(
        g["properties"]["p"],
        json!({"type": "object", "properties": {"x": {"type": "number", "minimum": 0}}, "description": "point"})
    );
    assert_eq!(
        g["properties"]["n"],
        json!({"type": "string", "nullable": true, "example": "a"})
    );
    assert_eq!(
        g["properties"]["u"],
        json!({"anyOf": [{"type": "integer"}, {"type": "boolean"}]})
    );
    assert_eq!(g["properties"]["e"], json!({}));
    assert_eq!(g["required"], json!(["p"]));
    assert!(
        g.get("$schema").is_none()
            && g.get("additionalProperties").is_none()
            && g.get("$defs").is_none()
    );
}

// ---------------------------------------------------------------- responses

#[test]
fn golden_response_to_claude() {
    let g = json!({"candidates": [{"index": 0, "finishReason": "STOP", "content": {"role": "model", "parts": [
        {"text": "Need weather.", "thought": true},
        {"text": "Let me "}, {"text": "check."},
        {"functionCall": {"name": "get_weather", "args": {"city": "Paris"}}, "thoughtSignature": "CiQB"}
    ]}}],
    "usageMetadata": {"promptTokenCount": 2060, "cachedContentTokenCount": 2048, "candidatesTokenCount": 47,
        "thoughtsTokenCount": 40, "totalTokenCount": 2147},
    "modelVersion": "gemini-x", "responseId": "abc123"});
    let c = response_to_claude(&g).unwrap();
    let id = response_call_id("abc123", 0);
    assert!(
        id.starts_with("toolu_gemini_")
            && id.ends_with("_0")
            && id.len() == "toolu_gemini_".len() + 10
    );
    assert_eq!(
        c,
        json!({
            "id": "msg_abc123", "type": "message", "role": "assistant", "model": "gemini-x",
            "content": [
                {"type": "thinking", "thinking": "Need weather.", "signature": ""},
                {"type": "text", "text": "Let me check."},
                {"type": "thinking", "thinking": "", "signature": "cch1.gemini.CiQB"},
                {"type": "tool_use", "id": id, "name": "get_weather", "input": {"city": "Paris"}}
            ],
            "stop_reason": "tool_use", "stop_sequence": null,
            "usage": {"input_tokens": 12, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 2048, "output_tokens": 87}
        })
    );
}

#[test]
fn response_to_claude_finish_reasons() {
    let mk = |reason: &str, parts: Value| json!({"candidates": [{"finishReason": reason, "content": {"parts": parts}}]});
    let stop = |v: Value| response_to_claude(&v).unwrap()["stop_reason"].clone();
    assert_eq!(stop(mk("STOP", json!([{"text": "a"}]))), "end_turn");
    assert_eq!(stop(mk("MAX_TOKENS", json!([{"text": "a"}]))), "max_tokens");
    assert_eq!(stop(mk("SAFETY", json!([]))), "refusal");
    assert_eq!(stop(mk("RECITATION", json!([{"text": "a"}]))), "refusal");
    assert_eq!(stop(mk("OTHER", json!([{"text": "a"}]))), "end_turn");
    assert_eq!(
        stop(json!({"candidates": [{"finishReason": "SAFETY"}]})),
        "refusal"
    );
    assert_eq!(
        stop(json!({"promptFeedback": {"blockReason": "SAFETY"}})),
        "refusal"
    );
    assert!(matches!(
        response_to_claude(&mk("MALFORMED_FUNCTION_CALL", json!([]))),
        Err(ConvertError::Invalid { .. })
    ));
}

#[test]
fn golden_response_from_claude() {
    let c = json!({"id": "msg_01X", "type": "message", "role": "assistant", "model": "claude-x",
        "content": [
            {"type": "thinking", "thinking": "The user wants", "signature": "EqQB"},
            {"type": "text", "text": "Let me check."},
            {"type": "tool_use", "id": "toolu_01A", "name": "get_weather", "input": {"city": "Paris"}},
            {"type": "server_tool_use", "id": "srvtoolu_1", "name": "web_search", "input": {}}
        ],
        "stop_reason": "tool_use", "stop_sequence": null,
        "usage": {"input_tokens": 12, "cache_creation_input_tokens": 5, "cache_read_input_tokens": 2048, "output_tokens": 87}});
    let g = response_from_claude(&c).unwrap();
    assert_eq!(
        g,
        json!({
            "candidates": [{"index": 0, "finishReason": "STOP", "content": {"role": "model", "parts": [
                {"text": "The user wants", "thought": true, "thoughtSignature": "cch1.anthropic.EqQB"},
                {"text": "Let me check."},
                {"functionCall": {"name": "get_weather", "args": {"city": "Paris"}, "id": "toolu_01A"}}
            ]}}],
            "usageMetadata": {"promptTokenCount": 2065, "cachedContentTokenCount": 2048, "candidatesTokenCount": 87, "totalTokenCount": 2152},
            "modelVersion": "claude-x", "responseId": "msg_01X"
        })
    );
    let refusal = json!({"content": [], "stop_reason": "refusal", "usage": {"input_tokens": 1, "output_tokens": 0}});
    let g = response_from_claude(&refusal).unwrap();
    assert_eq!(
        g["candidates"][0],
        json!({"index": 0, "finishReason": "SAFETY"})
    );
    let max = json!({"content": [{"type": "text", "text": "a"}], "stop_reason": "max_tokens"});
    assert_eq!(
        response_from_claude(&max).unwrap()["candidates"][0]["finishReason"],
        "MAX_TOKENS"
    );
}

#[test]
fn errors_from_claude() {
    let e = |s, t: &str| {
        error_from_claude(
            s,
            &json!({"type": "error", "error": {"type": t, "message": "m"}}),
        )
    };
    assert_eq!(
        e(400, "invalid_request_error"),
        json!({"error": {"code": 400, "message": "m", "status": "INVALID_ARGUMENT"}})
    );
    assert_eq!(e(529, "overloaded_error")["error"]["code"], 503);
    assert_eq!(
        e(429, "rate_limit_error")["error"]["status"],
        "RESOURCE_EXHAUSTED"
    );
    assert_eq!(
        e(401, "authentication_error")["error"]["status"],
        "UNAUTHENTICATED"
    );
    assert_eq!(e(404, "not_found_error")["error"]["status"], "NOT_FOUND");
    assert_eq!(
        e(504, "timeout_error")["error"]["status"],
        "DEADLINE_EXCEEDED"
    );
    assert_eq!(
        e(502, "api_error")["error"],
        json!({"code": 502, "message": "m", "status": "INTERNAL"})
    );
    assert_eq!(
        error_from_claude(503, &json!("down"))["error"]["message"],
        "down"
    );
    assert_eq!(
        error_from_claude(418, &json!(null))["error"]["status"],
        "INVALID_ARGUMENT"
    );
}

#[test]
fn usage_mapping() {
    let u = usage_from_gemini(
        &json!({"promptTokenCount": 100, "cachedContentTokenCount": 30,
        "toolUsePromptTokenCount": 5, "candidatesTokenCount": 7, "thoughtsTokenCount": 3}),
    );
    assert_eq!(
        (u.input_tokens, u.cache_read_tokens, u.output_tokens),
        (75, 30, 10)
    );
    assert_eq!(u.cache_creation_5m_tokens + u.cache_creation_1h_tokens, 0);
    let bad = usage_from_gemini(&json!({"promptTokenCount": 1, "cachedContentTokenCount": 9}));
    assert_eq!((bad.input_tokens, bad.cache_read_tokens), (0, 1));
    assert_eq!(usage_from_gemini(&json!("x")), Default::default());
}

// ---------------------------------------------------------------- bad input

#[test]
fn bad_requests_are_errors_not_panics() {
    let unsupported = [
        json!({"contents": [{"parts": [{"text": "a"}]}], "generationConfig": {"candidateCount": 2}}),
        json!({"contents": [{"parts": [{"text": "a"}]}], "generationConfig": {"responseLogprobs": true}}),
        json!({"contents": [{"parts": [{"text": "a"}]}], "generationConfig": {"responseModalities": ["TEXT", "IMAGE"]}}),
        json!({"contents": [{"parts": [{"text": "a"}]}], "generationConfig": {"responseMimeType": "application/json"}}),
        json!({"contents": [{"parts": [{"text": "a"}]}], "cachedContent": "cachedContents/1"}),
        json!({"contents": [{"parts": [{"inlineData": {"mimeType": "audio/wav", "data": "x"}}]}]}),
        json!({"contents": [{"parts": [{"fileData": {"fileUri": "gs://b/o"}}]}]}),
        json!({"contents": [{"parts": [{"executableCode": {"code": "1"}}]}]}),
        json!({"contents": [{"parts": [{"text": "a"}]}], "tools": [{"functionDeclarations": [{"name": "f"}, {"name": "g"}]}],
            "toolConfig": {"functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": ["f", "g"]}}}),
    ];
    for (i, g) in unsupported.iter().enumerate() {
        assert!(
            matches!(request_to_claude(g), Err(ConvertError::Unsupported { .. })),
            "case {i}"
        );
    }
    let invalid = [
        json!(null),
        json!([]),
        json!({}),
        json!({"contents": "x"}),
        json!({"contents": []}),
        json!({"contents": [1]}),
        json!({"contents": [{"role": "bot", "parts": []}]}),
        json!({"contents": [{"parts": "x"}]}),
        json!({"contents": [{"parts": [1]}]}),
        json!({"contents": [{"parts": [{"text": 5}]}]}),
        json!({"contents": [{"parts": [{"functionCall": {"name": "f"}}]}]}),
        json!({"contents": [{"role": "model", "parts": [{"functionCall": {"args": {}}}]}]}),
        json!({"contents": [{"role": "model", "parts": [{"functionCall": {"name": "f", "args": "x"}}]}]}),
        json!({"contents": [{"parts": [{"functionResponse": {"name": "f", "response": {}}}]}]}),
        json!({"contents": [{"parts": [{"inlineData": {"mimeType": "image/png"}}]}]}),
        json!({"contents": [{"parts": [{"text": "a"}]}], "generationConfig": 3}),
        json!({"contents": [{"parts": [{"text": "a"}]}], "tools": {}}),
        json!({"contents": [{"parts": [{"text": "a"}]}], "systemInstruction": {"parts": 1}}),
    ];
    for (i, g) in invalid.iter().enumerate() {
        assert!(
            matches!(request_to_claude(g), Err(ConvertError::Invalid { .. })),
            "case {i}: {g}"
        );
    }
    let from_claude_bad = [
        json!(null),
        json!({"messages": 1}),
        json!({"messages": []}),
        json!({"messages": [{"role": "tool", "content": "x"}]}),
        json!({"messages": [{"role": "user", "content": [{"type": "tool_result", "tool_use_id": "nope", "content": "x"}]}]}),
        json!({"messages": [{"role": "user", "content": [{"text": "no type"}]}]}),
        json!({"messages": [{"role": "user", "content": 5}]}),
        json!({"messages": [{"role": "user", "content": [{"type": "image"}]}]}),
        json!({"messages": [{"role": "user", "content": "x"}], "system": 5}),
    ];
    for (i, c) in from_claude_bad.iter().enumerate() {
        assert!(
            matches!(request_from_claude(c), Err(ConvertError::Invalid { .. })),
            "case {i}: {c}"
        );
    }
    let prefill = json!({"messages": [{"role": "user", "content": "x"}, {"role": "assistant", "content": "Sure"}]});
    assert!(matches!(
        request_from_claude(&prefill),
        Err(ConvertError::Unsupported { .. })
    ));
    let file = json!({"messages": [{"role": "user", "content": [{"type": "image", "source": {"type": "file", "file_id": "f"}}]}]});
    assert!(matches!(
        request_from_claude(&file),
        Err(ConvertError::Unsupported { .. })
    ));
}

#[test]
fn bad_responses_are_errors_not_panics() {
    for v in [
        json!(null),
        json!(3),
        json!({"error": {"code": 500, "message": "boom"}}),
        json!({}),
        json!({"candidates": [{"content": {"parts": 1}}]}),
        json!({"candidates": [{"content": {"parts": [{"functionCall": {"args": {}}}]}}]}),
    ] {
        assert!(response_to_claude(&v).is_err(), "{v}");
    }
    for v in [
        json!(null),
        json!({"content": 1}),
        json!({"content": [{"type": "tool_use"}]}),
    ] {
        assert!(response_from_claude(&v).is_err(), "{v}");
    }
}

// ---------------------------------------------------------------- round trips (property tests)

/// A small deterministic PRNG (xorshift64*), so property tests need no extra crate.
pub(super) struct Rng(u64);

impl Rng {
    pub(super) fn new(seed: u64) -> Self {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }
    pub(super) fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    pub(super) fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
    pub(super) fn text(&mut self) -> String {
        const WORDS: &[&str] = &[
            "alpha",
            "β",
            "\"quoted\"",
            "new\nline",
            "emoji 🎉",
            "tab\t",
            "x",
            "{json}",
            "\\",
        ];
        let n = 1 + self.below(4);
        (0..n)
            .map(|_| WORDS[self.below(WORDS.len() as u64) as usize])
            .collect::<Vec<_>>()
            .join(" ")
    }
}

/// A random valid Claude conversation: user text, then tool loops with parallel calls.
fn random_claude_request(rng: &mut Rng) -> Value {
    let mut messages =
        vec![json!({"role": "user", "content": [{"type": "text", "text": rng.text()}]})];
    let turns = 1 + rng.below(3);
    let mut call_no = 0;
    for _ in 0..turns {
        let mut asst = Vec::new();
        if rng.below(2) == 0 {
            asst.push(json!({"type": "text", "text": rng.text()}));
        }
        let calls = 1 + rng.below(3);
        let mut results = Vec::new();
        for _ in 0..calls {
            let id = if rng.below(2) == 0 {
                format!("toolu_{call_no:02}")
            } else {
                format!("call-{call_no}")
            };
            call_no += 1;
            let name = ["get_weather", "read_file", "mcp__srv__tool"][rng.below(3) as usize];
            asst.push(json!({"type": "tool_use", "id": id, "name": name,
                "input": {"arg": rng.text(), "n": rng.below(100), "nested": {"list": [1, 2]}}}));
            let mut r = json!({"type": "tool_result", "tool_use_id": id, "content": rng.text()});
            if rng.below(4) == 0 {
                r["is_error"] = json!(true);
            }
            results.push(r);
        }
        messages.push(json!({"role": "assistant", "content": asst}));
        if rng.below(2) == 0 {
            results.push(json!({"type": "text", "text": rng.text()}));
        }
        messages.push(json!({"role": "user", "content": results}));
    }
    json!({"model": "m", "max_tokens": 1 + rng.below(5000), "system": rng.text(), "messages": messages})
}

fn strip_model(mut v: Value) -> Value {
    if let Some(o) = v.as_object_mut() {
        o.remove("model");
    }
    v
}

#[test]
fn property_claude_gemini_claude_request_round_trip() {
    for seed in 0..300 {
        let mut rng = Rng::new(seed);
        let c = random_claude_request(&mut rng);
        let g = request_from_claude(&c).unwrap();
        let back = request_to_claude_with_model(&g, "m").unwrap();
        // The system string comes back as one text block; everything else is identical.
        let mut want = c.clone();
        want["system"] = json!([{"type": "text", "text": c["system"]}]);
        assert_eq!(strip_model(back), strip_model(want), "seed {seed}");
    }
}

#[test]
fn property_claude_gemini_claude_response_round_trip() {
    for seed in 0..300 {
        let mut rng = Rng::new(seed);
        let mut content = Vec::new();
        if rng.below(2) == 0 {
            content.push(json!({"type": "thinking", "thinking": rng.text(), "signature": "sig"}));
        }
        content.push(json!({"type": "text", "text": rng.text()}));
        let calls = rng.below(3);
        for k in 0..calls {
            content.push(json!({"type": "tool_use", "id": format!("toolu_{seed}_{k}"), "name": "f", "input": {"a": rng.text()}}));
        }
        let stop = if calls > 0 {
            "tool_use"
        } else {
            ["end_turn", "max_tokens"][rng.below(2) as usize]
        };
        let usage = json!({"input_tokens": rng.below(1000), "cache_creation_input_tokens": 0,
            "cache_read_input_tokens": rng.below(1000), "output_tokens": rng.below(1000)});
        let c = json!({"id": "msg_1", "type": "message", "role": "assistant", "model": "m",
            "content": content, "stop_reason": stop, "stop_sequence": null, "usage": usage});
        let g = response_from_claude(&c).unwrap();
        let back = response_to_claude(&g).unwrap();
        assert_eq!(back["stop_reason"], c["stop_reason"], "seed {seed}");
        assert_eq!(back["usage"], c["usage"], "seed {seed}");
        // Thinking keeps its text and its (unwrapped) Claude signature.
        assert_eq!(back["content"], c["content"], "seed {seed}");
    }
}
