//! Repairing a Claude request that a provider refused because of its thinking blocks (the
//! signatures were issued by another provider's backend, or a relay altered them): every
//! `thinking` and `redacted_thinking` block leaves the history, the assistant turns stay valid,
//! and if the last assistant turn is a tool call that thinking mode would require to start with
//! a thinking block, thinking is turned off for this request (protocols.md E20; the original
//! project's `thinking-signature-rectifier.ts` does the same on the matching 400).

use serde_json::Value;

/// What the repair changed, for the provider chain and the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Rectified {
    /// Thinking and redacted-thinking blocks removed.
    pub blocks_removed: usize,
    /// Whether the request's `thinking` setting was removed.
    pub thinking_disabled: bool,
}

impl Rectified {
    /// Whether anything changed (a retry is pointless otherwise).
    pub fn changed(&self) -> bool {
        self.blocks_removed > 0 || self.thinking_disabled
    }
}

fn is_thinking_block(b: &Value) -> bool {
    matches!(
        b.get("type").and_then(Value::as_str),
        Some("thinking" | "redacted_thinking")
    )
}

fn thinking_on(body: &Value) -> bool {
    matches!(
        body.pointer("/thinking/type").and_then(Value::as_str),
        Some("enabled" | "adaptive")
    )
}

/// Strips thinking blocks from a Claude request in place. Assistant messages left without
/// content are dropped; a `signature` field left on another block is removed too.
pub fn strip_thinking_blocks(body: &mut Value) -> Rectified {
    let mut out = Rectified::default();
    let Some(messages) = body.get_mut("messages").and_then(Value::as_array_mut) else {
        return out;
    };
    for m in messages.iter_mut() {
        if m.get("role").and_then(Value::as_str) != Some("assistant") {
            continue;
        }
        let Some(blocks) = m.get_mut("content").and_then(Value::as_array_mut) else {
            continue;
        };
        let before = blocks.len();
        blocks.retain(|b| !is_thinking_block(b));
        out.blocks_removed += before - blocks.len();
        for b in blocks.iter_mut() {
            if let Some(o) = b.as_object_mut() {
                o.remove("signature");
            }
        }
    }
    messages.retain(|m| {
        m.get("role").and_then(Value::as_str) != Some("assistant")
            || m.get("content")
                .and_then(Value::as_array)
                .is_none_or(|c| !c.is_empty())
    });
    let last_assistant_calls_tools = messages
        .iter()
        .rev()
        .find(|m| m.get("role").and_then(Value::as_str) == Some("assistant"))
        .and_then(|m| m.get("content").and_then(Value::as_array))
        .is_some_and(|c| {
            c.iter()
                .any(|b| b.get("type").and_then(Value::as_str) == Some("tool_use"))
        });
    if thinking_on(body)
        && last_assistant_calls_tools
        && let Some(o) = body.as_object_mut()
    {
        o.remove("thinking");
        out.thinking_disabled = true;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn strips_thinking_and_keeps_the_rest_of_each_turn() {
        let mut body = json!({
            "model": "m", "thinking": {"type": "enabled", "budget_tokens": 2048},
            "messages": [
                {"role": "user", "content": "hi"},
                {"role": "assistant", "content": [
                    {"type": "thinking", "thinking": "hmm", "signature": "foreign"},
                    {"type": "text", "text": "Hello"}]},
                {"role": "user", "content": "and?"},
                {"role": "assistant", "content": [
                    {"type": "redacted_thinking", "data": "xx"}]},
                {"role": "user", "content": "go on"},
            ]
        });
        let r = strip_thinking_blocks(&mut body);
        assert_eq!(r.blocks_removed, 2);
        assert!(
            !r.thinking_disabled,
            "no tool call in the last assistant turn"
        );
        assert_eq!(
            body["messages"],
            json!([
                {"role": "user", "content": "hi"},
                {"role": "assistant", "content": [{"type": "text", "text": "Hello"}]},
                {"role": "user", "content": "and?"},
                {"role": "user", "content": "go on"},
            ])
        );
        assert!(body.get("thinking").is_some());
    }

    #[test]
    fn a_tool_turn_without_its_thinking_turns_thinking_off() {
        let mut body = json!({
            "thinking": {"type": "adaptive"},
            "messages": [
                {"role": "user", "content": "weather?"},
                {"role": "assistant", "content": [
                    {"type": "thinking", "thinking": "call it", "signature": "foreign"},
                    {"type": "tool_use", "id": "t1", "name": "w", "input": {}}]},
                {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t1", "content": "sun"}]},
            ]
        });
        let r = strip_thinking_blocks(&mut body);
        assert!(r.changed() && r.thinking_disabled);
        assert!(body.get("thinking").is_none());
        assert_eq!(body["messages"][1]["content"][0]["type"], "tool_use");
    }

    #[test]
    fn nothing_to_strip_changes_nothing() {
        let mut body = json!({"messages": [{"role": "user", "content": "hi"},
            {"role": "assistant", "content": "plain"}]});
        let before = body.clone();
        assert!(!strip_thinking_blocks(&mut body).changed());
        assert_eq!(body, before);
    }
}
