//! The sensitive-word filter's cost (issue 14 item 1: ≤ 1 ms for a 1 MB Claude Code body
//! against 10,000 rules).
//!
//! `cargo bench --bench sensitive_words` compiles 10,000 rules (9,400 words, a third of them
//! Chinese, 500 exact phrases, 100 patterns), builds a 1 MB Claude Code-shaped request
//! (system prompt, tool definitions, 200 turns with tool results of source text, assistant
//! turns with tool calls) in an English and a Chinese-heavy variant, and times reading the
//! user's text out of the body plus checking it, as the proxy does, reporting the median and
//! the 99th percentile of 200 runs. No rule matches, so every byte is scanned. A third line
//! times the next turn of the same conversation, where the proxy's memory of parts already
//! found clean leaves only the new parts to scan.
//!
//! Before the sampled-gram filter and the literal prefilter (`sensitive_words_scan.rs`) the
//! cold "check only" line took 3.2 ms (English) and 3.3 ms (Chinese-heavy).

use std::hash::BuildHasher;
use std::time::{Duration, Instant};

use claude_code_hub::domain::sensitive_words::{SensitiveWord, WordMatch, WordSet};
use claude_code_hub::domain::user_text::user_texts;
use serde_json::json;

fn rules() -> Vec<SensitiveWord> {
    let mut out = Vec::new();
    let mut push = |word: String, match_type: WordMatch| {
        out.push(SensitiveWord {
            id: out.len() as i64 + 1,
            word,
            match_type,
            enabled: true,
            note: String::new(),
        })
    };
    let zh = [
        "机密", "内部", "禁止", "项目", "密钥", "客户", "合同", "财务",
    ];
    for i in 0..9_400 {
        if i % 3 == 0 {
            push(
                format!("{}{}{}", zh[i % 8], zh[(i / 8) % 8], i),
                WordMatch::Contains,
            );
        } else {
            push(format!("codeword-{i:05}-zq"), WordMatch::Contains);
        }
    }
    for i in 0..500 {
        push(format!("exact phrase number {i}"), WordMatch::Exact);
    }
    for i in 0..100 {
        push(format!(r"tok{i}_[a-f0-9]{{24}}\b"), WordMatch::Regex);
    }
    out
}

fn body(chinese: bool) -> Vec<u8> {
    let source = if chinese {
        "// 这个函数负责处理用户请求并返回结果，注意错误处理和日志记录。\nfn handle(req: Request) -> Response { let x = req.body(); process(x) }\n"
    } else {
        "fn handle(req: Request) -> Result<Response, Error> {\n    let body = req.body()?; // parse and validate\n    process(body).map_err(Error::from)\n}\n"
    };
    let mut messages = Vec::new();
    for turn in 0..100 {
        messages.push(json!({"role": "assistant", "content": [
            {"type": "text", "text": format!("Let me read file {turn}.")},
            {"type": "tool_use", "id": format!("toolu_{turn}"), "name": "Read",
             "input": {"file_path": format!("/src/module_{turn}.rs")}}]}));
        messages.push(json!({"role": "user", "content": [
            {"type": "tool_result", "tool_use_id": format!("toolu_{turn}"),
             "content": source.repeat(9_000 / source.len() + 1)}]}));
    }
    messages.insert(
        0,
        json!({"role": "user", "content": "Refactor the request handling across the project."}),
    );
    let tools: Vec<_> = (0..20)
        .map(|i| json!({"name": format!("tool_{i}"), "description": "A tool.".repeat(40),
                        "input_schema": {"type": "object", "properties": {"x": {"type": "string"}}}}))
        .collect();
    let b = json!({"model": "claude-sonnet-4-5", "max_tokens": 32000, "stream": true,
        "system": [{"type": "text", "text": "You are Claude Code. ".repeat(1_000)}],
        "tools": tools, "messages": messages});
    serde_json::to_vec(&b).unwrap_or_default()
}

fn time(label: &str, runs: usize, mut f: impl FnMut() -> bool) {
    let mut samples: Vec<Duration> = (0..runs)
        .map(|_| {
            let t = Instant::now();
            assert!(!f(), "a rule matched: the benchmark must scan everything");
            t.elapsed()
        })
        .collect();
    samples.sort();
    let p = |q: f64| samples[((samples.len() - 1) as f64 * q) as usize];
    println!(
        "{label:<44} median {:>8.3} ms   p99 {:>8.3} ms",
        p(0.5).as_secs_f64() * 1e3,
        p(0.99).as_secs_f64() * 1e3
    );
}

fn main() {
    let rules = rules();
    let t = Instant::now();
    let (set, bad) = WordSet::compile(&rules);
    assert!(bad.is_empty());
    println!(
        "compiled {} rules in {:.1} ms; the words' automata and filters hold {:.1} MB",
        rules.len(),
        t.elapsed().as_secs_f64() * 1e3,
        set.words_memory_usage() as f64 / 1e6
    );
    for (name, chinese) in [("English", false), ("Chinese-heavy", true)] {
        let b = body(chinese);
        let texts = user_texts(&b).unwrap_or_default();
        let user_bytes: usize = texts.iter().map(|t| t.len()).sum();
        println!(
            "{name} body: {:.2} MB, user text {:.2} MB in {} parts",
            b.len() as f64 / 1e6,
            user_bytes as f64 / 1e6,
            texts.len()
        );
        time(&format!("{name}: read user text + check"), 200, || {
            let texts = user_texts(&b).unwrap_or_default();
            texts.iter().any(|t| set.check(t).is_some())
        });
        time(&format!("{name}: check only"), 200, || {
            texts.iter().any(|t| set.check(t).is_some())
        });
        // The next turn of the same conversation: every part is hashed, only the two new
        // ones (the latest tool result and user text) are scanned, as the proxy does with
        // its memory of parts found clean.
        let hasher = foldhash::quality::RandomState::default();
        time(
            &format!("{name}: next turn (hash all, scan new)"),
            200,
            || {
                let texts = user_texts(&b).unwrap_or_default();
                let hashes: Vec<u64> = texts.iter().map(|t| hasher.hash_one(t)).collect();
                std::hint::black_box(hashes);
                texts.iter().rev().take(2).any(|t| set.check(t).is_some())
            },
        );
    }
}
