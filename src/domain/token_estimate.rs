//! A local input-token estimate for `count_tokens` when the provider has no count endpoint.
//!
//! Method: every piece of text the model sees (system prompt, message text, tool-call arguments,
//! tool results, tool names, descriptions and JSON schemas) is counted in characters and
//! divided by 3.5 (English prose and code average 3.5–4 characters per token in the o200k and
//! Claude tokenizers; CJK text averages closer to 1–1.5, so non-ASCII characters count as one
//! token each), plus 4 tokens per message, 8 per tool and 1,600 per image (the size cap of a
//! Claude image). The sum is raised by 10 %: an over-count makes a client compact a little
//! early, an under-count makes its next request fail with "prompt is too long". The error has
//! not been calibrated against billed counts yet: English prose and code land near the real
//! count plus the 10 % margin; JSON-heavy tool schemas and CJK text may be off by more.

use serde_json::Value;

fn text_weight(s: &str) -> f64 {
    let (mut ascii, mut other) = (0usize, 0usize);
    for c in s.chars() {
        if c.is_ascii() {
            ascii += 1;
        } else {
            other += 1;
        }
    }
    ascii as f64 / 3.5 + other as f64
}

fn content_weight(v: &Value, images: &mut u64) -> f64 {
    match v {
        Value::String(s) => text_weight(s),
        Value::Array(items) => items.iter().map(|i| content_weight(i, images)).sum(),
        Value::Object(o) => {
            if o.get("type").and_then(Value::as_str) == Some("image") {
                *images += 1;
                return 0.0;
            }
            let mut w = 0.0;
            for key in ["text", "thinking", "content", "name"] {
                if let Some(x) = o.get(key) {
                    w += content_weight(x, images);
                }
            }
            if let Some(input) = o.get("input") {
                w += text_weight(&input.to_string());
            }
            w
        }
        _ => 0.0,
    }
}

/// Estimated input tokens of a Claude Messages request (system, messages and tools together).
pub fn estimate_input_tokens(body: &Value) -> u64 {
    let mut images = 0u64;
    let mut w = body
        .get("system")
        .map_or(0.0, |s| content_weight(s, &mut images));
    let messages = body.get("messages").and_then(Value::as_array);
    for m in messages.into_iter().flatten() {
        w += 4.0
            + m.get("content")
                .map_or(0.0, |c| content_weight(c, &mut images));
    }
    let tools = body.get("tools").and_then(Value::as_array);
    for t in tools.into_iter().flatten() {
        w += 8.0 + text_weight(&t.to_string());
    }
    let total = (w + images as f64 * 1600.0) * 1.1;
    (total.ceil() as u64).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn counts_system_messages_tools_and_images() {
        let small =
            estimate_input_tokens(&json!({"messages": [{"role": "user", "content": "hi"}]}));
        assert!((1..20).contains(&small), "{small}");
        let text = "x".repeat(3500);
        let big = estimate_input_tokens(
            &json!({"system": text, "messages": [{"role": "user", "content": "hi"}]}),
        );
        assert!(big >= 1100, "1000 tokens of system text plus 10 %: {big}");
        let with_tool = estimate_input_tokens(
            &json!({"messages": [{"role": "user", "content": "hi"}],
            "tools": [{"name": "Bash", "description": "run", "input_schema": {"type": "object"}}]}),
        );
        assert!(with_tool > small);
        let image = estimate_input_tokens(
            &json!({"messages": [{"role": "user", "content": [{"type": "image", "source": {}}]}]}),
        );
        assert!(image >= 1600);
    }
}
