//! The tokenizer path of `count_tokens` (issue 12 item 4): a Claude Code-shaped request of
//! about 100K tokens, converted to OpenAI Chat as the proxy does for an OpenAI-compatible
//! provider, counted with `o200k_base`. `cargo bench --bench token_count` prints the first
//! (vocabulary load) and the median of 20 warm counts.

use std::time::Instant;

use claude_code_hub::app::proxy::token_count::count_request_tokens;
use claude_code_hub::domain::convert::dispatch;
use claude_code_hub::domain::format::ClientFormat;
use serde_json::json;

fn main() {
    let source = "fn handle(req: Request) -> Result<Response, Error> {\n    let body = req.body()?; // parse and validate\n    process(body).map_err(Error::from)\n}\n";
    let mut messages = vec![json!({"role": "user", "content": "Refactor the request handling."})];
    for turn in 0..60 {
        messages.push(json!({"role": "assistant", "content": [
            {"type": "text", "text": format!("Reading file {turn}.")},
            {"type": "tool_use", "id": format!("t{turn}"), "name": "Read", "input": {"path": format!("/src/m{turn}.rs")}}]}));
        messages.push(json!({"role": "user", "content": [
            {"type": "tool_result", "tool_use_id": format!("t{turn}"), "content": source.repeat(60)}]}));
    }
    let claude = json!({"model": "gpt-5", "max_tokens": 32000,
        "system": "You are Claude Code. ".repeat(2000), "messages": messages,
        "tools": [{"name": "Read", "description": "Read a file", "input_schema": {"type": "object", "properties": {"path": {"type": "string"}}}}]});
    let chat = dispatch::request_from_claude(ClientFormat::OpenAi, &claude).unwrap_or_default();
    let t = Instant::now();
    let n = count_request_tokens(&chat, "gpt-5");
    let first = t.elapsed();
    let mut runs: Vec<f64> = (0..20)
        .map(|_| {
            let t = Instant::now();
            std::hint::black_box(count_request_tokens(&chat, "gpt-5"));
            t.elapsed().as_secs_f64() * 1e3
        })
        .collect();
    runs.sort_by(|a, b| a.total_cmp(b));
    println!(
        "{n} tokens: first count (loads the vocabulary) {:.1} ms, warm median {:.1} ms",
        first.as_secs_f64() * 1e3,
        runs[runs.len() / 2]
    );
}
