//! Converter throughput: how many MB/s of SSE each streaming converter handles on one core.
//!
//! `cargo bench --bench convert_throughput` builds a realistic Claude stream (text deltas, a
//! tool call with streamed JSON arguments, usage), renders it in every other format with the
//! converters themselves, then times parse + convert + serialise for every direction, fed in
//! 4 KiB chunks as a socket would deliver them.

use std::time::{Duration, Instant};

use claude_code_hub::domain::convert::dispatch::{self, ClientContext};
use claude_code_hub::domain::convert::{OutEvent, StreamConverter};
use claude_code_hub::domain::format::ClientFormat;
use claude_code_hub::domain::sse::SseParser;
use serde_json::json;

fn claude_stream(text_events: usize) -> Vec<u8> {
    let mut out = String::new();
    let mut push =
        |name: &str, data: serde_json::Value| out.push_str(&OutEvent::named(name, &data).to_sse());
    push(
        "message_start",
        json!({"type": "message_start", "message": {"id": "msg_bench", "type": "message", "role": "assistant",
        "model": "claude-sonnet-4-5", "content": [], "stop_reason": null, "stop_sequence": null,
        "usage": {"input_tokens": 1200, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 30000, "output_tokens": 1}}}),
    );
    push(
        "content_block_start",
        json!({"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}),
    );
    for i in 0..text_events {
        push(
            "content_block_delta",
            json!({"type": "content_block_delta", "index": 0,
            "delta": {"type": "text_delta", "text": format!("Here is part {i} of a long answer about Rust gateways. ")}}),
        );
    }
    push(
        "content_block_stop",
        json!({"type": "content_block_stop", "index": 0}),
    );
    push(
        "content_block_start",
        json!({"type": "content_block_start", "index": 1,
        "content_block": {"type": "tool_use", "id": "toolu_bench", "name": "Bash", "input": {}}}),
    );
    for piece in [
        "{\"comm",
        "and\": \"ls -la",
        " /tmp\", \"timeout\"",
        ": 1200}",
    ] {
        push(
            "content_block_delta",
            json!({"type": "content_block_delta", "index": 1, "delta": {"type": "input_json_delta", "partial_json": piece}}),
        );
    }
    push(
        "content_block_stop",
        json!({"type": "content_block_stop", "index": 1}),
    );
    push(
        "message_delta",
        json!({"type": "message_delta", "delta": {"stop_reason": "tool_use", "stop_sequence": null}, "usage": {"output_tokens": 4000}}),
    );
    push("message_stop", json!({"type": "message_stop"}));
    out.into_bytes()
}

/// Runs `bytes` through a parser and an optional converter chain; returns output bytes.
fn run(bytes: &[u8], mut convs: Vec<Box<dyn StreamConverter>>) -> usize {
    let mut parser = SseParser::new();
    let mut out = 0usize;
    let mut feed = |events: Vec<claude_code_hub::domain::sse::SseEvent>,
                    convs: &mut Vec<Box<dyn StreamConverter>>| {
        for ev in events {
            let mut stage = vec![ev];
            for c in convs.iter_mut() {
                let mut next = Vec::new();
                for e in &stage {
                    for o in c.push(e).unwrap_or_default() {
                        next.push(claude_code_hub::domain::sse::SseEvent {
                            event: o.event,
                            data: o.data,
                            id: None,
                            retry: None,
                        });
                    }
                }
                stage = next;
            }
            for e in stage {
                out += OutEvent {
                    event: e.event,
                    data: e.data,
                }
                .to_sse()
                .len();
            }
        }
    };
    for chunk in bytes.chunks(4096) {
        let evs = parser.push(chunk).unwrap_or_default();
        feed(evs, &mut convs);
    }
    out
}

fn render(bytes: &[u8], to: ClientFormat) -> Vec<u8> {
    let req = json!({"model": "m", "stream": true, "stream_options": {"include_usage": true}});
    let ctx = ClientContext {
        request: &req,
        model: "m",
        created_at: 0,
    };
    let conv = dispatch::stream_from_claude(to, &ctx).into_iter().collect();
    let mut parser = SseParser::new();
    let mut convs: Vec<Box<dyn StreamConverter>> = conv;
    let mut out = String::new();
    for ev in parser.push(bytes).unwrap_or_default() {
        for o in convs[0].push(&ev).unwrap_or_default() {
            out.push_str(&o.to_sse());
        }
    }
    for o in convs[0].finish() {
        out.push_str(&o.to_sse());
    }
    out.into_bytes()
}

fn measure(name: &str, input: &[u8], make: &dyn Fn() -> Vec<Box<dyn StreamConverter>>) {
    let started = Instant::now();
    let mut rounds = 0u32;
    let mut out = 0;
    while started.elapsed() < Duration::from_millis(800) {
        out = run(input, make());
        rounds += 1;
    }
    let secs = started.elapsed().as_secs_f64();
    let mb = input.len() as f64 * f64::from(rounds) / 1e6;
    println!(
        "{name:<28} {:>8.1} MB/s of input SSE   ({} KB in, {} KB out per stream)",
        mb / secs,
        input.len() / 1024,
        out / 1024
    );
}

fn main() {
    let claude = claude_stream(20_000);
    let req = json!({"model": "m", "stream": true, "stream_options": {"include_usage": true}});
    println!(
        "stream of {} KB ({} events)",
        claude.len() / 1024,
        20_000 + 12
    );
    measure("parse only (Claude)", &claude, &|| Vec::new());
    for (name, to) in [
        ("Claude -> OpenAI chat", ClientFormat::OpenAi),
        ("Claude -> Responses", ClientFormat::Response),
        ("Claude -> Gemini", ClientFormat::Gemini),
    ] {
        let r = req.clone();
        measure(name, &claude, &move || {
            let ctx = ClientContext {
                request: &r,
                model: "m",
                created_at: 0,
            };
            dispatch::stream_from_claude(to, &ctx).into_iter().collect()
        });
    }
    for (name, from) in [
        ("OpenAI chat -> Claude", ClientFormat::OpenAi),
        ("Responses -> Claude", ClientFormat::Response),
        ("Gemini -> Claude", ClientFormat::Gemini),
    ] {
        let input = render(&claude, from);
        measure(name, &input, &move || {
            dispatch::stream_to_claude(from).into_iter().collect()
        });
    }
    for (name, from, to) in [
        (
            "OpenAI chat -> Gemini",
            ClientFormat::OpenAi,
            ClientFormat::Gemini,
        ),
        (
            "Gemini -> Responses",
            ClientFormat::Gemini,
            ClientFormat::Response,
        ),
    ] {
        let input = render(&claude, from);
        let r = req.clone();
        measure(name, &input, &move || {
            let ctx = ClientContext {
                request: &r,
                model: "m",
                created_at: 0,
            };
            dispatch::stream_to_claude(from)
                .into_iter()
                .chain(dispatch::stream_from_claude(to, &ctx))
                .collect()
        });
    }
}
