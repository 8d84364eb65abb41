//! Property-based fuzzing on the stable toolchain (issue 14 item 5): every parser and converter
//! that reads bytes a client or an upstream controls is fed generated input and must never
//! panic; where a property is cheap to state (SSE chunking, error-message cap, body checks) it
//! is asserted too.
//!
//! Runs inside the normal test command with a small case count per target; set
//! `CCH_FUZZ_CASES` (e.g. `CCH_FUZZ_CASES=20000 cargo nextest run --test fuzz_props`) for a
//! longer local run.

use bytes::Bytes;
use claude_code_hub::app::proxy::body::RequestBody;
use claude_code_hub::domain::config_bundle::ConfigBundle;
use claude_code_hub::domain::convert::dispatch::{self, ClientContext};
use claude_code_hub::domain::failure::extract_error_message;
use claude_code_hub::domain::format::ClientFormat;
use claude_code_hub::domain::provider::{validate_http_url, validate_proxy_url};
use claude_code_hub::domain::sse::{SseEvent, SseParser};
use proptest::prelude::*;
use proptest::test_runner::Config;
use serde_json::{Map, Value};

/// Cases per target: small by default (the whole file stays well under a minute), larger
/// through `CCH_FUZZ_CASES`.
fn config() -> Config {
    let cases = std::env::var("CCH_FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(192);
    Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    }
}

const FORMATS: [ClientFormat; 4] = [
    ClientFormat::Claude,
    ClientFormat::OpenAi,
    ClientFormat::Response,
    ClientFormat::Gemini,
];

/// Field names the four wire formats use, so generated objects reach deep into the
/// converters instead of being refused at the first missing field.
const KEYS: &[&str] = &[
    "model",
    "messages",
    "role",
    "content",
    "type",
    "text",
    "id",
    "name",
    "input",
    "arguments",
    "tool_use",
    "tool_result",
    "tool_use_id",
    "tool_calls",
    "tool_call_id",
    "function",
    "tools",
    "tool_choice",
    "system",
    "instructions",
    "max_tokens",
    "max_output_tokens",
    "stream",
    "stream_options",
    "include_usage",
    "thinking",
    "signature",
    "reasoning",
    "summary",
    "image",
    "image_url",
    "source",
    "data",
    "media_type",
    "url",
    "contents",
    "parts",
    "functionCall",
    "functionResponse",
    "inlineData",
    "mimeType",
    "generationConfig",
    "systemInstruction",
    "candidates",
    "usageMetadata",
    "promptTokenCount",
    "candidatesTokenCount",
    "finishReason",
    "choices",
    "delta",
    "message",
    "finish_reason",
    "usage",
    "prompt_tokens",
    "completion_tokens",
    "input_tokens",
    "output_tokens",
    "output",
    "output_text",
    "status",
    "stop_reason",
    "index",
    "content_block",
    "error",
    "n",
    "temperature",
    "top_p",
    "stop",
    "metadata",
    "user",
    "response",
    "item",
    "item_id",
    "output_index",
    "call_id",
];

const WORDS: &[&str] = &[
    "user",
    "assistant",
    "system",
    "developer",
    "tool",
    "model",
    "function",
    "text",
    "tool_use",
    "tool_result",
    "thinking",
    "redacted_thinking",
    "image",
    "input_text",
    "output_text",
    "message",
    "function_call",
    "function_call_output",
    "reasoning",
    "base64",
    "url",
    "auto",
    "any",
    "none",
    "required",
    "end_turn",
    "tool_calls",
    "stop",
    "STOP",
    "MAX_TOKENS",
    "message_start",
    "content_block_start",
    "content_block_delta",
    "content_block_stop",
    "message_delta",
    "message_stop",
    "text_delta",
    "input_json_delta",
    "thinking_delta",
    "signature_delta",
    "response.created",
    "response.output_text.delta",
    "response.output_item.added",
    "response.function_call_arguments.delta",
    "response.completed",
    "cch1.abc",
    "image/png",
    "data:image/png;base64,AAAA",
    "{\"a\":1}",
    "{",
    "",
    "é🙂\u{0}",
];

fn key() -> impl Strategy<Value = String> {
    prop_oneof![
        8 => proptest::sample::select(KEYS).prop_map(str::to_string),
        1 => "[a-z_]{0,8}",
    ]
}

fn scalar() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        (-1.0e300f64..1.0e300).prop_map(Value::from),
        (0i64..5).prop_map(Value::from),
        proptest::sample::select(WORDS).prop_map(|s| Value::String(s.to_string())),
        ".{0,12}".prop_map(Value::String),
    ]
}

/// Arbitrary JSON biased towards the shapes of the four formats.
fn json() -> impl Strategy<Value = Value> {
    scalar().prop_recursive(6, 96, 6, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
            proptest::collection::vec((key(), inner), 0..7)
                .prop_map(|kv| Value::Object(kv.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

/// A JSON object (the top level every converter expects).
fn json_object() -> impl Strategy<Value = Value> {
    proptest::collection::vec((key(), json()), 0..8)
        .prop_map(|kv| Value::Object(kv.into_iter().collect::<Map<_, _>>()))
}

fn format() -> impl Strategy<Value = ClientFormat> {
    proptest::sample::select(&FORMATS[..])
}

fn event() -> impl Strategy<Value = SseEvent> {
    (
        proptest::option::of(proptest::sample::select(WORDS).prop_map(str::to_string)),
        prop_oneof![
            4 => json_object().prop_map(|v| v.to_string()),
            1 => Just("[DONE]".to_string()),
            1 => ".{0,20}",
        ],
    )
        .prop_map(|(event, data)| SseEvent {
            event,
            data,
            id: None,
            retry: None,
        })
}

/// Splits `bytes` at the given (sorted, deduplicated) cut points.
fn split_at(bytes: &[u8], mut cuts: Vec<usize>) -> Vec<&[u8]> {
    cuts.retain(|c| *c > 0 && *c < bytes.len());
    cuts.sort_unstable();
    cuts.dedup();
    let mut out = Vec::new();
    let mut start = 0;
    for c in cuts {
        out.push(&bytes[start..c]);
        start = c;
    }
    out.push(&bytes[start..]);
    out
}

fn parse_all(chunks: &[&[u8]]) -> Vec<SseEvent> {
    let mut parser = SseParser::new();
    let mut events = Vec::new();
    for chunk in chunks {
        match parser.push(chunk) {
            Ok(mut ev) => events.append(&mut ev),
            Err(e) => panic!("16 MiB cap hit by a small input: {e}"),
        }
    }
    if let Ok(Some(last)) = parser.finish() {
        events.push(last);
    }
    events
}

proptest! {
    #![proptest_config(config())]

    /// Requests in any format → Claude → any format: errors are fine, panics are not.
    #[test]
    fn request_converters_never_panic(from in format(), to in format(), body in json_object()) {
        if let Ok(claude) = dispatch::request_to_claude(from, &body) {
            let mut claude = claude;
            dispatch::strip_foreign_thinking(&mut claude);
            let _ = dispatch::request_from_claude(to, &claude);
        }
        let _ = dispatch::request_from_claude(to, &body);
    }

    /// Complete answers in any format → Claude → the client's format.
    #[test]
    fn response_converters_never_panic(
        from in format(),
        to in format(),
        body in json_object(),
        request in json_object(),
    ) {
        let ctx = ClientContext { request: &request, model: "m", created_at: 1_700_000_000 };
        if let Ok(claude) = dispatch::response_to_claude(from, &body) {
            let _ = dispatch::response_from_claude(to, &claude, &ctx);
        }
        let _ = dispatch::response_from_claude(to, &body, &ctx);
    }

    /// Stream events in any order, through both stream converters, then finish / error.
    #[test]
    fn stream_converters_never_panic(
        from in format(),
        to in format(),
        events in proptest::collection::vec(event(), 0..24),
        request in json_object(),
        end_with_error in any::<bool>(),
    ) {
        let ctx = ClientContext { request: &request, model: "m", created_at: 1_700_000_000 };
        let mut up = dispatch::stream_to_claude(from);
        let mut down = dispatch::stream_from_claude(to, &ctx);
        for ev in &events {
            let claude_events = match up.as_mut() {
                Some(c) => match c.push(ev) {
                    Ok(out) => out
                        .into_iter()
                        .map(|o| SseEvent { event: o.event, data: o.data, id: None, retry: None })
                        .collect(),
                    Err(_) => continue,
                },
                None => vec![ev.clone()],
            };
            if let Some(d) = down.as_mut() {
                for ce in &claude_events {
                    let _ = d.push(ce);
                }
                // Raw events straight into the Claude → client converter, too.
                let _ = d.push(ev);
            }
        }
        if let Some(c) = up.as_mut() {
            let _ = if end_with_error { c.error("boom") } else { c.finish() };
        }
        if let Some(d) = down.as_mut() {
            let _ = if end_with_error { d.error("boom") } else { d.finish() };
        }
    }

    /// The SSE parser yields the same events however the bytes are chunked (the stream
    /// converters rely on it), and never panics on arbitrary bytes.
    #[test]
    fn sse_parser_is_chunking_independent(
        events in proptest::collection::vec(event(), 0..8),
        noise in proptest::collection::vec(any::<u8>(), 0..64usize),
        crlf in any::<bool>(),
        cuts in proptest::collection::vec(0usize..4096, 0..16),
    ) {
        let mut text = String::new();
        for e in &events {
            let mut block = claude_code_hub::domain::convert::OutEvent { event: e.event.clone(), data: e.data.clone() }.to_sse();
            if crlf {
                block = block.replace('\n', "\r\n");
            }
            text.push_str(&block);
        }
        let mut bytes = text.into_bytes();
        let whole = parse_all(&[&bytes]);
        let chunked = parse_all(&split_at(&bytes, cuts.clone()));
        prop_assert_eq!(&whole, &chunked);
        // Every event comes back with its data, in order (generated data has no line breaks
        // other than a possible CR, which SSE treats as one).
        if events.iter().all(|e| !e.data.contains('\r')) {
            let got: Vec<&str> = whole.iter().map(|e| e.data.as_str()).collect();
            let want: Vec<&str> = events.iter().map(|e| e.data.as_str()).collect();
            prop_assert_eq!(got, want);
        }
        // Arbitrary trailing bytes: no panic, chunking still irrelevant.
        bytes.extend_from_slice(&noise);
        let whole = parse_all(&[&bytes]);
        let chunked = parse_all(&split_at(&bytes, cuts));
        prop_assert_eq!(whole, chunked);
    }

    /// The routing-field reader (body shape check + head parse) on arbitrary bytes and on
    /// generated JSON: never panics; accepted bodies are JSON objects, valid UTF-8.
    #[test]
    fn request_body_reader_never_panics(
        raw in proptest::collection::vec(any::<u8>(), 0..256),
        body in json_object(),
        depth in 0usize..300,
    ) {
        if RequestBody::parse(Bytes::from(raw.clone())).is_ok() {
            prop_assert!(std::str::from_utf8(&raw).is_ok());
        }
        let text = body.to_string();
        // Generated objects are shallow, so a non-rejection must only depend on the head types.
        let _ = RequestBody::parse(Bytes::from(text.clone()));
        let deep = format!(
            "{{\"model\":\"m\",\"messages\":{}{}}}",
            "[".repeat(depth),
            "]".repeat(depth)
        );
        let parsed = RequestBody::parse(Bytes::from(deep));
        if depth >= 128 {
            prop_assert!(parsed.is_err(), "depth {} accepted", depth);
        }
    }

    /// The upstream error-message extractor: never panics, output bounded.
    #[test]
    fn error_message_extractor_is_bounded(
        text in ".{0,600}",
        body in json_object(),
        msg in ".{0,2000}",
    ) {
        let a = extract_error_message(&text);
        let b = extract_error_message(&body.to_string());
        let wrapped = serde_json::json!({"error": {"message": msg}}).to_string();
        let c = extract_error_message(&wrapped);
        for out in [&a, &b, &c] {
            prop_assert!(out.chars().count() <= 2_100);
        }
        // A wrapped message comes back (possibly capped) from its start.
        let prefix: String = msg.trim().chars().take(16).collect();
        prop_assert!(c.trim_start().starts_with(prefix.trim_end()) || msg.contains('<'));
        let html = format!("<html><head><title>{msg}</title></head><body>x</body></html>");
        let _ = extract_error_message(&html);
    }

    /// Admin / import JSON: the config bundle and URL validators on arbitrary input.
    #[test]
    fn admin_json_parsing_never_panics(body in json_object(), raw in ".{0,200}", url in ".{0,80}") {
        if let Ok(bundle) = serde_json::from_value::<ConfigBundle>(body) {
            let _ = bundle.check_version();
        }
        if let Ok(bundle) = serde_json::from_str::<ConfigBundle>(&raw) {
            let _ = bundle.check_version();
        }
        let _ = validate_http_url("url", &url);
        let _ = validate_proxy_url(&url);
        let _ = validate_http_url("url", &format!("https://{url}"));
        let _ = validate_proxy_url(&format!("socks5://{url}"));
    }
}
