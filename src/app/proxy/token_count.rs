//! `count_tokens` for providers without a count endpoint (OpenAI-compatible, Codex): the
//! converted request is counted with the provider's own tokenizer (`o200k_base` for the GPT-4o,
//! 4.1, 5 and o-series families, `cl100k_base` for GPT-4 and 3.5), adding the overheads OpenAI
//! documents for chat: 3 tokens per message plus 1 per name, 3 to prime the reply; tools cost
//! their definition's tokens plus 7 each and 12 once. Runs on a blocking thread (the first use
//! loads a vocabulary; a 100K-token request takes milliseconds).

use serde_json::Value;
use tiktoken_rs::CoreBPE;

/// Per-message overhead (role and separators).
const PER_MESSAGE: usize = 3;
/// Reply priming.
const REPLY_PRIMING: usize = 3;
/// Per tool definition, and once for the tool block.
const PER_TOOL: usize = 7;
const TOOLS_BLOCK: usize = 12;

/// Keys whose values are structure, not text the model reads.
const SKIPPED_KEYS: [&str; 5] = ["type", "id", "call_id", "status", "image_url"];

/// The vocabulary a model uses.
fn tokenizer_for(model: &str) -> &'static CoreBPE {
    let m = model.to_ascii_lowercase();
    let m = m.rsplit('/').next().unwrap_or(&m);
    let cl100k = (m.starts_with("gpt-4") && !m.starts_with("gpt-4o") && !m.starts_with("gpt-4.1"))
        || m.starts_with("gpt-3.5");
    if cl100k {
        tiktoken_rs::cl100k_base_singleton()
    } else {
        tiktoken_rs::o200k_base_singleton()
    }
}

fn text_tokens(bpe: &CoreBPE, v: &Value, out: &mut usize, depth: usize) {
    if depth > 64 {
        return;
    }
    match v {
        Value::String(s) => *out += bpe.encode_ordinary(s).len(),
        Value::Array(a) => a.iter().for_each(|x| text_tokens(bpe, x, out, depth + 1)),
        Value::Object(o) => o
            .iter()
            .filter(|(k, _)| !SKIPPED_KEYS.contains(&k.as_str()))
            .for_each(|(_, x)| text_tokens(bpe, x, out, depth + 1)),
        _ => {}
    }
}

/// Input tokens of a request in OpenAI Chat or Responses shape for `model`.
pub fn count_request_tokens(request: &Value, model: &str) -> u64 {
    let bpe = tokenizer_for(model);
    let mut n = REPLY_PRIMING;
    let items = request.get("messages").or_else(|| request.get("input"));
    match items {
        Some(Value::Array(items)) => {
            for item in items {
                n += PER_MESSAGE;
                if item.get("name").is_some() {
                    n += 1;
                }
                text_tokens(bpe, item, &mut n, 0);
            }
        }
        Some(other) => {
            n += PER_MESSAGE;
            text_tokens(bpe, other, &mut n, 0);
        }
        None => {}
    }
    if let Some(instructions) = request.get("instructions") {
        n += PER_MESSAGE;
        text_tokens(bpe, instructions, &mut n, 0);
    }
    if let Some(Value::Array(tools)) = request.get("tools")
        && !tools.is_empty()
    {
        n += TOOLS_BLOCK;
        for t in tools {
            n += PER_TOOL + bpe.encode_ordinary(&t.to_string()).len();
        }
    }
    u64::try_from(n).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn chat_messages_count_as_openai_documents() {
        // "hello world" is 2 tokens in o200k_base: 3 (priming) + 3 + 1 ("user") + 2.
        let n = count_request_tokens(
            &json!({"messages": [{"role": "user", "content": "hello world"}]}),
            "gpt-4o",
        );
        assert_eq!(n, 9);
        let with_tools = count_request_tokens(
            &json!({"messages": [{"role": "user", "content": "hello world"}],
                    "tools": [{"type": "function", "function": {"name": "f", "parameters": {}}}]}),
            "gpt-4o",
        );
        assert!(with_tools > n + TOOLS_BLOCK as u64 + PER_TOOL as u64);
    }

    #[test]
    fn responses_input_and_instructions_count_and_models_pick_their_vocabulary() {
        let r = json!({"instructions": "be brief", "input": [
            {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "你好，世界"}]}]});
        let a = count_request_tokens(&r, "gpt-5-codex");
        assert!(a > 6, "{a}");
        let b = count_request_tokens(&r, "gpt-4-0613");
        assert!(b > 6, "{b}");
    }
}
