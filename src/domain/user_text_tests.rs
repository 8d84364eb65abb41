use super::user_texts;
use serde_json::json;

fn texts(v: serde_json::Value) -> Vec<String> {
    let bytes = serde_json::to_vec(&v).unwrap();
    user_texts(&bytes)
        .unwrap()
        .into_iter()
        .map(|c| c.into_owned())
        .collect()
}

#[test]
fn claude_system_user_blocks_and_tool_results_but_not_assistant_turns() {
    let got = texts(json!({
        "model": "claude-sonnet-4-5",
        "system": [{"type": "text", "text": "SYS"}],
        "tools": [{"name": "t", "description": "TOOLDESC", "input_schema": {}}],
        "messages": [
            {"role": "user", "content": "U1"},
            {"role": "assistant", "content": [
                {"type": "thinking", "thinking": "THINK", "signature": "s"},
                {"type": "text", "text": "A1"},
                {"type": "tool_use", "id": "x", "name": "t", "input": {"q": "TOOLARG"}}
            ]},
            {"role": "user", "content": [
                {"type": "tool_result", "tool_use_id": "x", "content": [{"type": "text", "text": "RESULT"}]},
                {"type": "tool_result", "tool_use_id": "y", "content": "RESULT2"},
                {"type": "text", "text": "U2"}
            ]}
        ]
    }));
    assert_eq!(got, ["SYS", "U1", "RESULT", "RESULT2", "U2"]);
}

#[test]
fn openai_chat_messages_with_parts_and_tool_messages() {
    let got = texts(json!({
        "model": "gpt-5",
        "messages": [
            {"role": "system", "content": "S"},
            {"role": "developer", "content": [{"type": "text", "text": "D"}]},
            {"role": "user", "content": [{"type": "text", "text": "U"}, {"type": "image_url", "image_url": {"url": "http://x"}}]},
            {"role": "assistant", "content": "A", "tool_calls": [{"function": {"arguments": "ARGS"}}]},
            {"role": "tool", "tool_call_id": "c", "content": "T"}
        ]
    }));
    assert_eq!(got, ["S", "D", "U", "T"]);
}

#[test]
fn responses_instructions_input_and_function_outputs() {
    let got = texts(json!({
        "model": "gpt-5-codex",
        "instructions": "INS",
        "input": [
            {"type": "message", "role": "developer", "content": [{"type": "input_text", "text": "DEV"}]},
            {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "U"}]},
            {"type": "reasoning", "summary": [{"type": "summary_text", "text": "R"}]},
            {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "A"}]},
            {"type": "function_call", "name": "shell", "arguments": "{\"cmd\":\"ls\"}", "call_id": "c"},
            {"type": "function_call_output", "call_id": "c", "output": "OUT"}
        ]
    }));
    assert_eq!(got, ["INS", "DEV", "U", "OUT"]);
    assert_eq!(
        texts(json!({"model": "m", "input": "just text"})),
        ["just text"]
    );
}

#[test]
fn gemini_both_spellings_user_parts_and_function_responses_not_model_turns() {
    let camel = texts(json!({
        "systemInstruction": {"parts": [{"text": "SYS"}]},
        "contents": [
            {"role": "user", "parts": [{"text": "U"}]},
            {"role": "model", "parts": [{"text": "M"}, {"functionCall": {"name": "f", "args": {"a": "ARG"}}}]},
            {"role": "user", "parts": [{"functionResponse": {"name": "f", "response": {"out": ["R1", {"x": "R2"}], "n": 3}}}]}
        ]
    }));
    assert_eq!(camel, ["SYS", "U", "R1", "R2"]);
    let snake = texts(json!({
        "system_instruction": {"parts": [{"text": "SYS"}]},
        "contents": [{"parts": [{"text": "U"}, {"function_response": {"response": {"v": "R"}}}]}]
    }));
    assert_eq!(snake, ["SYS", "U", "R"]);
}

#[test]
fn escaped_text_is_decoded_and_plain_text_borrowed() {
    let body = br#"{"messages":[{"role":"user","content":"plain"},{"role":"user","content":"a\u0062c\n"}]}"#;
    let got = user_texts(body).unwrap();
    assert!(matches!(got[0], std::borrow::Cow::Borrowed("plain")));
    assert_eq!(got[1], "abc\n");
}

#[test]
fn not_an_object_is_an_error() {
    assert!(user_texts(b"[1,2]").is_err());
    assert!(user_texts(b"{").is_err());
}
