//! The 4 × 4 conversion matrix, end to end through cch: every client format (Claude
//! `/v1/messages`, OpenAI `/v1/chat/completions`, Responses `/v1/responses`, Gemini
//! `:generateContent` / `:streamGenerateContent?alt=sse`) against a fake upstream of every
//! provider type (`claude`, `openai-compatible`, `codex`, `gemini`), each non-streaming and
//! streaming, with a plain text answer and with a tool call. Every cell is its own test, named
//! `{client}_client_on_{provider}_provider_{json|stream}_{text|tool}`.
//!
//! Each cell checks, in this order (so the failure message says which side broke):
//! 1. the client got a well-formed answer in its own format: text, the tool call (name,
//!    arguments, id), the finish/stop reason, usage equal to what the fake sent (§6.9 buckets),
//!    and for streams the format's full event sequence and terminator;
//! 2. the fake upstream received a well-formed request in its own format (path, credentials,
//!    model, the user message, the tool);
//! 3. the request log row has the provider, status and the token buckets.
//!
//! Same-format cells are passthrough; the others need the converters.

mod support;

use std::time::Duration;

use claude_code_hub::domain::request_log::{LogFilter, RequestLog};
use serde_json::{Value, json};
use support::app::{TestApp, spawn_app};
use support::fake_upstream::fake_formats::{WireFormat, accounted};
use support::fake_upstream::{FakeUpstream, Reply, Usage};

use WireFormat::{Claude, Gemini, OpenAiChat as OpenAi, Responses};

const MODEL: &str = "matrix-model-1";
const PROMPT: &str = "What is the weather in Paris?";
const ANSWER: &str = "It is sunny in Paris today, with a light breeze from the west.";
const TOOL: &str = "get_weather";

fn tool_args() -> Value {
    json!({"city": "Paris", "unit": "celsius"})
}

fn tool_schema() -> Value {
    json!({"type": "object", "properties": {"city": {"type": "string"}, "unit": {"type": "string"}},
           "required": ["city"]})
}

/// Fresh input 100, output 50, cache write 10, cache read 1000.
fn scripted_usage() -> Usage {
    Usage {
        input_tokens: 100,
        output_tokens: 50,
        cache_creation_input_tokens: 10,
        cache_read_input_tokens: 1000,
    }
}

fn provider_type(f: WireFormat) -> &'static str {
    match f {
        Claude => "claude",
        OpenAi => "openai-compatible",
        Responses => "codex",
        Gemini => "gemini",
    }
}

fn format_name(f: WireFormat) -> &'static str {
    match f {
        Claude => "claude",
        OpenAi => "openai",
        Responses => "response",
        Gemini => "gemini",
    }
}

async fn setup(
    client: WireFormat,
    provider: WireFormat,
    up: &FakeUpstream,
) -> (TestApp, i64, String) {
    let t = spawn_app(&[]).await;
    let extra: Vec<&str> = if client == provider {
        vec![]
    } else {
        vec![format_name(client)]
    };
    let (status, p) = t
        .post(
            "/api/v1/providers",
            json!({"name": "p", "provider_type": provider_type(provider), "base_url": up.url(),
                   "api_key": "sk-upstream-secret", "extra_client_formats": extra}),
        )
        .await;
    assert_eq!(status, 201, "{p}");
    let pid = p["id"].as_i64().unwrap();
    let (status, u) = t.post("/api/v1/users", json!({"name": "u"})).await;
    assert_eq!(status, 201, "{u}");
    let (status, k) = t
        .post(
            &format!("/api/v1/users/{}/keys", u["id"]),
            json!({"name": "k"}),
        )
        .await;
    assert_eq!(status, 201, "{k}");
    (t, pid, k["key"].as_str().unwrap().to_string())
}

/// The client's request in its own format.
fn client_request(
    t: &TestApp,
    key: &str,
    f: WireFormat,
    stream: bool,
    tool: bool,
) -> reqwest::RequestBuilder {
    let (path, body, auth) = match f {
        Claude => {
            let mut b = json!({"model": MODEL, "max_tokens": 200, "stream": stream,
                               "messages": [{"role": "user", "content": PROMPT}]});
            if tool {
                b["tools"] = json!([{"name": TOOL, "description": "Weather for a city", "input_schema": tool_schema()}]);
            }
            (
                "/v1/messages".to_string(),
                b,
                ("x-api-key", key.to_string()),
            )
        }
        OpenAi => {
            let mut b = json!({"model": MODEL, "max_completion_tokens": 200, "stream": stream,
                               "messages": [{"role": "user", "content": PROMPT}]});
            if stream {
                b["stream_options"] = json!({"include_usage": true});
            }
            if tool {
                b["tools"] = json!([{"type": "function", "function": {"name": TOOL,
                    "description": "Weather for a city", "parameters": tool_schema()}}]);
            }
            (
                "/v1/chat/completions".to_string(),
                b,
                ("authorization", format!("Bearer {key}")),
            )
        }
        Responses => {
            let mut b = json!({"model": MODEL, "max_output_tokens": 200, "stream": stream, "store": false,
                               "input": [{"type": "message", "role": "user",
                                          "content": [{"type": "input_text", "text": PROMPT}]}]});
            if tool {
                b["tools"] = json!([{"type": "function", "name": TOOL, "description": "Weather for a city",
                                     "parameters": tool_schema(), "strict": false}]);
            }
            (
                "/v1/responses".to_string(),
                b,
                ("authorization", format!("Bearer {key}")),
            )
        }
        Gemini => {
            let mut b = json!({"contents": [{"role": "user", "parts": [{"text": PROMPT}]}],
                               "generationConfig": {"maxOutputTokens": 200}});
            if tool {
                b["tools"] = json!([{"functionDeclarations": [{"name": TOOL,
                    "description": "Weather for a city", "parameters": tool_schema()}]}]);
            }
            let path = if stream {
                format!("/v1beta/models/{MODEL}:streamGenerateContent?alt=sse")
            } else {
                format!("/v1beta/models/{MODEL}:generateContent")
            };
            (path, b, ("x-goog-api-key", key.to_string()))
        }
    };
    let mut r = t.http.post(t.url(&path)).header(auth.0, auth.1).json(&body);
    if f == Claude {
        r = r.header("anthropic-version", "2023-06-01");
    }
    r
}

/// What a client understood from the answer, whatever its format.
#[derive(Debug)]
struct Answer {
    text: String,
    /// (id, name, arguments)
    tool: Option<(String, String, Value)>,
    finish: String,
    usage: Usage,
}

impl Answer {
    fn new() -> Self {
        Answer {
            text: String::new(),
            tool: None,
            finish: String::new(),
            usage: Usage {
                input_tokens: 0,
                output_tokens: 0,
                cache_creation_input_tokens: 0,
                cache_read_input_tokens: 0,
            },
        }
    }
}

fn n(v: &Value) -> u64 {
    v.as_u64().unwrap_or(0)
}

fn claude_usage(u: &Value, into: &mut Usage) {
    // The SDK's merge rule: present, non-null fields overwrite.
    if let Some(x) = u.get("input_tokens").and_then(Value::as_u64) {
        into.input_tokens = x;
    }
    if let Some(x) = u.get("output_tokens").and_then(Value::as_u64) {
        into.output_tokens = x;
    }
    if let Some(x) = u.get("cache_creation_input_tokens").and_then(Value::as_u64) {
        into.cache_creation_input_tokens = x;
    }
    if let Some(x) = u.get("cache_read_input_tokens").and_then(Value::as_u64) {
        into.cache_read_input_tokens = x;
    }
}

fn openai_usage(u: &Value, input_field: &str, details: &str, output_field: &str) -> Usage {
    let all = n(&u[input_field]);
    let read = n(&u[details]["cached_tokens"]);
    let write = n(&u[details]["cache_write_tokens"]);
    let out = n(&u[output_field]);
    assert_eq!(
        n(&u["total_tokens"]),
        all + out,
        "total_tokens = input + output: {u}"
    );
    Usage {
        input_tokens: all.saturating_sub(read + write),
        output_tokens: out,
        cache_creation_input_tokens: write,
        cache_read_input_tokens: read,
    }
}

fn gemini_usage(u: &Value) -> Usage {
    let prompt = n(&u["promptTokenCount"]);
    let read = n(&u["cachedContentTokenCount"]);
    let out = n(&u["candidatesTokenCount"]) + n(&u["thoughtsTokenCount"]);
    assert_eq!(
        n(&u["totalTokenCount"]),
        prompt + out,
        "totalTokenCount: {u}"
    );
    Usage {
        input_tokens: prompt - read,
        output_tokens: out,
        cache_creation_input_tokens: 0,
        cache_read_input_tokens: read,
    }
}

/// Splits an SSE body (LF or CRLF) into (event name, data) pairs; comments are skipped.
fn sse_frames(bytes: &[u8]) -> Vec<(String, String)> {
    let text = std::str::from_utf8(bytes).unwrap().replace("\r\n", "\n");
    text.split("\n\n")
        .filter_map(|e| {
            let mut name = String::new();
            let mut data: Vec<&str> = Vec::new();
            for line in e.lines() {
                if let Some(v) = line.strip_prefix("event:") {
                    name = v.trim().to_string();
                } else if let Some(v) = line.strip_prefix("data:") {
                    data.push(v.strip_prefix(' ').unwrap_or(v));
                }
            }
            (!data.is_empty()).then(|| (name, data.join("\n")))
        })
        .collect()
}

fn parse_json(s: &str) -> Value {
    serde_json::from_str(s).unwrap_or_else(|e| panic!("event data is not JSON ({e}): {s}"))
}

fn claude_answer(v: &Value) -> Answer {
    assert_eq!(v["type"], "message", "{v}");
    assert_eq!(v["role"], "assistant");
    let mut a = Answer::new();
    for b in v["content"].as_array().expect("content array") {
        match b["type"].as_str() {
            Some("text") => a.text.push_str(b["text"].as_str().unwrap()),
            Some("tool_use") => {
                a.tool = Some((
                    b["id"].as_str().unwrap().into(),
                    b["name"].as_str().unwrap().into(),
                    b["input"].clone(),
                ))
            }
            _ => {}
        }
    }
    a.finish = v["stop_reason"].as_str().unwrap_or_default().into();
    claude_usage(&v["usage"], &mut a.usage);
    a
}

fn claude_stream(frames: &[(String, String)]) -> Answer {
    let events: Vec<(String, Value)> = frames
        .iter()
        .map(|(n, d)| (n.clone(), parse_json(d)))
        .collect();
    let names: Vec<&str> = events
        .iter()
        .map(|(n, _)| n.as_str())
        .filter(|n| *n != "ping")
        .collect();
    assert_eq!(names.first(), Some(&"message_start"), "{names:?}");
    assert_eq!(
        &names[names.len() - 2..],
        ["message_delta", "message_stop"],
        "{names:?}"
    );
    let mut a = Answer::new();
    let mut open: Option<(usize, String)> = None;
    let mut args = String::new();
    for (name, d) in &events {
        assert_eq!(d["type"], name.as_str(), "event name equals data type");
        match name.as_str() {
            "message_start" => claude_usage(&d["message"]["usage"], &mut a.usage),
            "content_block_start" => {
                assert!(open.is_none(), "blocks do not overlap");
                let b = &d["content_block"];
                open = Some((
                    d["index"].as_u64().unwrap() as usize,
                    b["type"].as_str().unwrap().into(),
                ));
                if b["type"] == "tool_use" {
                    a.tool = Some((
                        b["id"].as_str().unwrap().into(),
                        b["name"].as_str().unwrap().into(),
                        Value::Null,
                    ));
                }
            }
            "content_block_delta" => {
                let (i, _) = open.as_ref().expect("delta inside a block");
                assert_eq!(d["index"], *i);
                match d["delta"]["type"].as_str() {
                    Some("text_delta") => a.text.push_str(d["delta"]["text"].as_str().unwrap()),
                    Some("input_json_delta") => {
                        args.push_str(d["delta"]["partial_json"].as_str().unwrap())
                    }
                    _ => {}
                }
            }
            "content_block_stop" => {
                let (i, _) = open.take().expect("stop of an open block");
                assert_eq!(d["index"], i);
            }
            "message_delta" => {
                a.finish = d["delta"]["stop_reason"]
                    .as_str()
                    .unwrap_or_default()
                    .into();
                claude_usage(&d["usage"], &mut a.usage);
            }
            _ => {}
        }
    }
    if let Some(t) = a.tool.as_mut() {
        t.2 = if args.is_empty() {
            json!({})
        } else {
            parse_json(&args)
        };
    }
    a
}

fn chat_answer(v: &Value) -> Answer {
    assert_eq!(v["object"], "chat.completion", "{v}");
    assert!(v["id"].as_str().is_some_and(|s| !s.is_empty()));
    let ch = &v["choices"][0];
    assert_eq!(ch["message"]["role"], "assistant");
    let mut a = Answer::new();
    a.text = ch["message"]["content"].as_str().unwrap_or_default().into();
    if let Some(c) = ch["message"]["tool_calls"].get(0) {
        assert_eq!(c["type"], "function");
        let args = parse_json(
            c["function"]["arguments"]
                .as_str()
                .expect("arguments is a string"),
        );
        a.tool = Some((
            c["id"].as_str().unwrap().into(),
            c["function"]["name"].as_str().unwrap().into(),
            args,
        ));
    }
    a.finish = ch["finish_reason"].as_str().unwrap_or_default().into();
    a.usage = openai_usage(
        &v["usage"],
        "prompt_tokens",
        "prompt_tokens_details",
        "completion_tokens",
    );
    a
}

fn chat_stream(frames: &[(String, String)]) -> Answer {
    assert_eq!(
        frames.last().map(|f| f.1.as_str()),
        Some("[DONE]"),
        "ends with [DONE]"
    );
    let chunks: Vec<Value> = frames[..frames.len() - 1]
        .iter()
        .map(|(_, d)| parse_json(d))
        .collect();
    let mut a = Answer::new();
    let (usage_chunk, rest) = chunks.split_last().expect("chunks");
    assert_eq!(
        usage_chunk["choices"],
        json!([]),
        "usage chunk last (include_usage): {usage_chunk}"
    );
    a.usage = openai_usage(
        &usage_chunk["usage"],
        "prompt_tokens",
        "prompt_tokens_details",
        "completion_tokens",
    );
    let id = chunks[0]["id"].clone();
    assert_eq!(
        rest[0]["choices"][0]["delta"]["role"], "assistant",
        "first chunk carries the role"
    );
    let mut args = String::new();
    for (i, c) in chunks.iter().enumerate() {
        assert_eq!(c["object"], "chat.completion.chunk");
        assert_eq!(c["id"], id, "one id for every chunk");
        if i + 1 < chunks.len() {
            assert!(
                c.get("usage").is_none_or(Value::is_null),
                "usage only on the last chunk"
            );
        }
        let Some(ch) = c["choices"].get(0) else {
            continue;
        };
        if i > 0 {
            assert!(
                ch["delta"].get("role").is_none_or(Value::is_null),
                "role only once"
            );
        }
        if let Some(t) = ch["delta"]["content"].as_str() {
            a.text.push_str(t);
        }
        for tc in ch["delta"]["tool_calls"].as_array().into_iter().flatten() {
            assert_eq!(tc["index"], 0, "every tool-call delta has an index");
            if let Some(id) = tc["id"].as_str() {
                assert!(a.tool.is_none(), "the tool-call id appears once");
                a.tool = Some((
                    id.into(),
                    tc["function"]["name"].as_str().unwrap().into(),
                    Value::Null,
                ));
            }
            args.push_str(tc["function"]["arguments"].as_str().unwrap_or_default());
        }
        if let Some(f) = ch["finish_reason"].as_str() {
            a.finish = f.into();
        }
    }
    if let Some(t) = a.tool.as_mut() {
        t.2 = parse_json(&args);
    }
    a
}

fn responses_answer(v: &Value) -> Answer {
    assert_eq!(v["object"], "response", "{v}");
    assert!(v["id"].as_str().is_some_and(|s| !s.is_empty()));
    let mut a = Answer::new();
    let mut has_call = false;
    for item in v["output"].as_array().expect("output") {
        match item["type"].as_str() {
            Some("message") => {
                assert_eq!(item["role"], "assistant");
                for p in item["content"].as_array().unwrap() {
                    if p["type"] == "output_text" {
                        a.text.push_str(p["text"].as_str().unwrap());
                    }
                }
            }
            Some("function_call") => {
                has_call = true;
                let args = parse_json(item["arguments"].as_str().expect("arguments is a string"));
                a.tool = Some((
                    item["call_id"].as_str().unwrap().into(),
                    item["name"].as_str().unwrap().into(),
                    args,
                ));
            }
            _ => {}
        }
    }
    let _ = has_call;
    a.finish = v["status"].as_str().unwrap_or_default().into();
    for k in ["input_tokens", "output_tokens", "total_tokens"] {
        assert!(
            v["usage"][k].is_u64(),
            "usage.{k} is an integer: {}",
            v["usage"]
        );
    }
    a.usage = openai_usage(
        &v["usage"],
        "input_tokens",
        "input_tokens_details",
        "output_tokens",
    );
    a
}

fn responses_stream(frames: &[(String, String)]) -> Answer {
    let events: Vec<(String, Value)> = frames
        .iter()
        .map(|(n, d)| (n.clone(), parse_json(d)))
        .collect();
    let names: Vec<&str> = events.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names.first(), Some(&"response.created"), "{names:?}");
    assert_eq!(names.last(), Some(&"response.completed"), "{names:?}");
    let mut last_seq: Option<u64> = None;
    let mut added = 0u64;
    let mut parts_open = false;
    let mut text = String::new();
    let mut args = String::new();
    for (name, d) in &events {
        assert_eq!(d["type"], name.as_str(), "event name equals data type");
        let seq = d["sequence_number"].as_u64().expect("sequence_number");
        assert!(
            last_seq.is_none_or(|l| seq > l),
            "sequence numbers increase"
        );
        last_seq = Some(seq);
        match name.as_str() {
            "response.output_item.added" => {
                assert_eq!(d["output_index"], added, "dense output indexes");
                added += 1;
            }
            "response.content_part.added" => parts_open = true,
            "response.output_text.delta" => {
                assert!(parts_open, "content_part.added precedes output_text.delta");
                assert!(d["output_index"].as_u64().unwrap() < added);
                text.push_str(d["delta"].as_str().unwrap());
            }
            "response.function_call_arguments.delta" => {
                assert!(d["output_index"].as_u64().unwrap() < added);
                args.push_str(d["delta"].as_str().unwrap());
            }
            _ => {}
        }
    }
    assert!(names.contains(&"response.output_item.done"));
    let a = responses_answer(&events.last().unwrap().1["response"]);
    assert_eq!(text, a.text, "deltas add up to the completed text");
    if let Some(t) = &a.tool {
        assert_eq!(
            parse_json(&args),
            t.2,
            "argument deltas add up to the arguments"
        );
    }
    a
}

fn gemini_answer_from(chunks: &[Value]) -> Answer {
    let mut a = Answer::new();
    for c in chunks {
        assert!(c.get("error").is_none(), "error chunk: {c}");
        let Some(cand) = c["candidates"].get(0) else {
            continue;
        };
        for p in cand["content"]["parts"].as_array().into_iter().flatten() {
            if p.get("thought").and_then(Value::as_bool) == Some(true) {
                continue;
            }
            if let Some(t) = p["text"].as_str() {
                a.text.push_str(t);
            }
            if let Some(fc) = p.get("functionCall") {
                assert!(fc["args"].is_object(), "args is an object");
                a.tool = Some((
                    fc["id"].as_str().unwrap_or_default().into(),
                    fc["name"].as_str().unwrap().into(),
                    fc["args"].clone(),
                ));
            }
        }
        if let Some(f) = cand["finishReason"].as_str() {
            a.finish = f.into();
        }
    }
    let last = chunks.last().expect("chunks");
    assert!(
        last["candidates"][0]["finishReason"].is_string(),
        "the last chunk has finishReason: {last}"
    );
    a.usage = gemini_usage(&last["usageMetadata"]);
    a
}

fn parse_answer(f: WireFormat, stream: bool, body: &[u8]) -> Answer {
    if !stream {
        let v: Value = serde_json::from_slice(body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(body)));
        return match f {
            Claude => claude_answer(&v),
            OpenAi => chat_answer(&v),
            Responses => responses_answer(&v),
            Gemini => gemini_answer_from(&[v]),
        };
    }
    let frames = sse_frames(body);
    assert!(!frames.is_empty(), "empty stream");
    match f {
        Claude => claude_stream(&frames),
        OpenAi => chat_stream(&frames),
        Responses => responses_stream(&frames),
        Gemini => {
            assert!(
                frames.iter().all(|(n, _)| n.is_empty()),
                "Gemini events have no names"
            );
            let chunks: Vec<Value> = frames.iter().map(|(_, d)| parse_json(d)).collect();
            gemini_answer_from(&chunks)
        }
    }
}

fn expected_finish(f: WireFormat, tool: bool) -> &'static str {
    match (f, tool) {
        (Claude, false) => "end_turn",
        (Claude, true) => "tool_use",
        (OpenAi, false) => "stop",
        (OpenAi, true) => "tool_calls",
        (Responses, _) => "completed",
        (Gemini, _) => "STOP",
    }
}

/// The request the fake upstream received is well-formed in its own format.
fn check_upstream_request(up: &FakeUpstream, provider: WireFormat, stream: bool, tool: bool) {
    let reqs = up.requests();
    assert_eq!(reqs.len(), 1, "one upstream request");
    let rec = &reqs[0];
    let target = rec.target().expect("an inference route");
    assert_eq!(target.format, provider, "upstream path {}", rec.path);
    assert_eq!(target.stream, stream, "stream flag upstream ({})", rec.path);
    let body = rec.json.clone().expect("JSON body");
    assert!(
        body.to_string().contains(PROMPT),
        "the prompt reached the upstream: {body}"
    );
    let names = |v: &Value| v.as_array().map(|a| a.len()).unwrap_or(0);
    match provider {
        Claude => {
            assert_eq!(rec.header("x-api-key"), Some("sk-upstream-secret"));
            assert_eq!(rec.path_only(), "/v1/messages");
            assert_eq!(body["model"], MODEL);
            assert!(
                body["max_tokens"].is_u64(),
                "max_tokens is required: {body}"
            );
            assert_eq!(body["messages"][0]["role"], "user");
            if tool {
                assert_eq!(body["tools"][0]["name"], TOOL);
                assert_eq!(body["tools"][0]["input_schema"]["type"], "object");
            } else {
                assert_eq!(names(&body["tools"]), 0);
            }
        }
        OpenAi => {
            assert_eq!(
                rec.header("authorization"),
                Some("Bearer sk-upstream-secret")
            );
            assert_eq!(rec.path_only(), "/v1/chat/completions");
            assert_eq!(body["model"], MODEL);
            let msgs = body["messages"].as_array().expect("messages");
            assert_eq!(msgs.last().unwrap()["role"], "user");
            if stream {
                assert_eq!(
                    body["stream_options"]["include_usage"], true,
                    "usage asked for: {body}"
                );
            }
            if tool {
                assert_eq!(body["tools"][0]["type"], "function");
                assert_eq!(body["tools"][0]["function"]["name"], TOOL);
                assert_eq!(body["tools"][0]["function"]["parameters"]["type"], "object");
            }
        }
        Responses => {
            assert_eq!(
                rec.header("authorization"),
                Some("Bearer sk-upstream-secret")
            );
            assert_eq!(rec.path_only(), "/v1/responses");
            assert_eq!(body["model"], MODEL);
            assert!(
                body["input"].is_string() || body["input"].is_array(),
                "input: {body}"
            );
            if tool {
                assert_eq!(body["tools"][0]["type"], "function");
                assert_eq!(body["tools"][0]["name"], TOOL, "function tools are flat");
            }
        }
        Gemini => {
            assert_eq!(rec.header("x-goog-api-key"), Some("sk-upstream-secret"));
            assert_eq!(target.model, MODEL, "model in the path");
            if stream {
                assert!(
                    rec.query().unwrap_or("").contains("alt=sse"),
                    "alt=sse: {}",
                    rec.path
                );
            }
            assert!(
                body.get("model").is_none() && body.get("stream").is_none(),
                "no model/stream in a Gemini body: {body}"
            );
            let contents = body["contents"].as_array().expect("contents");
            assert_eq!(contents.last().unwrap()["role"], "user");
            if tool {
                assert_eq!(body["tools"][0]["functionDeclarations"][0]["name"], TOOL);
            }
        }
    }
}

async fn log_row(t: &TestApp) -> RequestLog {
    for _ in 0..100 {
        let rows = t
            .app
            .ctx
            .log_store
            .list_logs(&LogFilter {
                limit: 10,
                ..Default::default()
            })
            .await
            .unwrap();
        if let Some(r) = rows.into_iter().next() {
            return r;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("no log row appeared");
}

async fn run_cell(client: WireFormat, provider: WireFormat, stream: bool, tool: bool) {
    let up = FakeUpstream::start().await;
    let (t, pid, key) = setup(client, provider, &up).await;
    let usage = scripted_usage();
    let reply = match (tool, stream) {
        (false, _) => Reply::text(ANSWER),
        (true, false) => Reply::tool_use(TOOL, tool_args()),
        (true, true) => Reply::tool_use_stream(TOOL, tool_args()),
    };
    up.push(reply.usage(
        usage.input_tokens,
        usage.output_tokens,
        usage.cache_creation_input_tokens,
        usage.cache_read_input_tokens,
    ));

    // 1. The client's answer, in its format.
    let r = client_request(&t, &key, client, stream, tool)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    let ctype = r
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    let body = r.bytes().await.unwrap();
    assert_eq!(
        status,
        200,
        "client status; body: {}",
        String::from_utf8_lossy(&body)
    );
    if stream {
        assert!(
            ctype.starts_with("text/event-stream"),
            "content-type {ctype}"
        );
    } else {
        assert!(
            ctype.starts_with("application/json"),
            "content-type {ctype}"
        );
    }
    let a = parse_answer(client, stream, &body);
    if tool {
        let (id, name, args) = a
            .tool
            .clone()
            .unwrap_or_else(|| panic!("no tool call in {a:?}"));
        assert_eq!(name, TOOL);
        assert_eq!(args, tool_args());
        if client != Gemini {
            assert!(!id.is_empty(), "tool call id");
        }
    } else {
        assert_eq!(a.text, ANSWER);
        assert!(a.tool.is_none());
    }
    assert_eq!(a.finish, expected_finish(client, tool), "finish reason");
    let buckets = accounted(provider, usage);
    assert_eq!(
        a.usage,
        accounted(client, buckets),
        "client usage (as §6.9 buckets)"
    );

    // 2. The upstream's request, in its format.
    check_upstream_request(&up, provider, stream, tool);

    // 3. The log row.
    let row = log_row(&t).await;
    assert_eq!(row.provider_id, Some(pid));
    assert_eq!(row.status_code, 200);
    assert_eq!(row.is_stream, stream);
    assert_eq!(
        (
            row.input_tokens,
            row.output_tokens,
            row.cache_creation_5m_tokens,
            row.cache_read_tokens
        ),
        (
            buckets.input_tokens as i64,
            buckets.output_tokens as i64,
            buckets.cache_creation_input_tokens as i64,
            buckets.cache_read_input_tokens as i64
        ),
        "log tokens"
    );
}

macro_rules! cell {
    ($name:ident, $client:expr, $provider:expr, $stream:expr, $tool:expr) => {
        #[tokio::test]
        async fn $name() {
            run_cell($client, $provider, $stream, $tool).await;
        }
    };
}

cell!(
    claude_client_on_claude_provider_json_text,
    Claude,
    Claude,
    false,
    false
);
cell!(
    claude_client_on_claude_provider_json_tool,
    Claude,
    Claude,
    false,
    true
);
cell!(
    claude_client_on_claude_provider_stream_text,
    Claude,
    Claude,
    true,
    false
);
cell!(
    claude_client_on_claude_provider_stream_tool,
    Claude,
    Claude,
    true,
    true
);
cell!(
    claude_client_on_openai_compatible_provider_json_text,
    Claude,
    OpenAi,
    false,
    false
);
cell!(
    claude_client_on_openai_compatible_provider_json_tool,
    Claude,
    OpenAi,
    false,
    true
);
cell!(
    claude_client_on_openai_compatible_provider_stream_text,
    Claude,
    OpenAi,
    true,
    false
);
cell!(
    claude_client_on_openai_compatible_provider_stream_tool,
    Claude,
    OpenAi,
    true,
    true
);
cell!(
    claude_client_on_codex_provider_json_text,
    Claude,
    Responses,
    false,
    false
);
cell!(
    claude_client_on_codex_provider_json_tool,
    Claude,
    Responses,
    false,
    true
);
cell!(
    claude_client_on_codex_provider_stream_text,
    Claude,
    Responses,
    true,
    false
);
cell!(
    claude_client_on_codex_provider_stream_tool,
    Claude,
    Responses,
    true,
    true
);
cell!(
    claude_client_on_gemini_provider_json_text,
    Claude,
    Gemini,
    false,
    false
);
cell!(
    claude_client_on_gemini_provider_json_tool,
    Claude,
    Gemini,
    false,
    true
);
cell!(
    claude_client_on_gemini_provider_stream_text,
    Claude,
    Gemini,
    true,
    false
);
cell!(
    claude_client_on_gemini_provider_stream_tool,
    Claude,
    Gemini,
    true,
    true
);
cell!(
    openai_client_on_claude_provider_json_text,
    OpenAi,
    Claude,
    false,
    false
);
cell!(
    openai_client_on_claude_provider_json_tool,
    OpenAi,
    Claude,
    false,
    true
);
cell!(
    openai_client_on_claude_provider_stream_text,
    OpenAi,
    Claude,
    true,
    false
);
cell!(
    openai_client_on_claude_provider_stream_tool,
    OpenAi,
    Claude,
    true,
    true
);
cell!(
    openai_client_on_openai_compatible_provider_json_text,
    OpenAi,
    OpenAi,
    false,
    false
);
cell!(
    openai_client_on_openai_compatible_provider_json_tool,
    OpenAi,
    OpenAi,
    false,
    true
);
cell!(
    openai_client_on_openai_compatible_provider_stream_text,
    OpenAi,
    OpenAi,
    true,
    false
);
cell!(
    openai_client_on_openai_compatible_provider_stream_tool,
    OpenAi,
    OpenAi,
    true,
    true
);
cell!(
    openai_client_on_codex_provider_json_text,
    OpenAi,
    Responses,
    false,
    false
);
cell!(
    openai_client_on_codex_provider_json_tool,
    OpenAi,
    Responses,
    false,
    true
);
cell!(
    openai_client_on_codex_provider_stream_text,
    OpenAi,
    Responses,
    true,
    false
);
cell!(
    openai_client_on_codex_provider_stream_tool,
    OpenAi,
    Responses,
    true,
    true
);
cell!(
    openai_client_on_gemini_provider_json_text,
    OpenAi,
    Gemini,
    false,
    false
);
cell!(
    openai_client_on_gemini_provider_json_tool,
    OpenAi,
    Gemini,
    false,
    true
);
cell!(
    openai_client_on_gemini_provider_stream_text,
    OpenAi,
    Gemini,
    true,
    false
);
cell!(
    openai_client_on_gemini_provider_stream_tool,
    OpenAi,
    Gemini,
    true,
    true
);
cell!(
    responses_client_on_claude_provider_json_text,
    Responses,
    Claude,
    false,
    false
);
cell!(
    responses_client_on_claude_provider_json_tool,
    Responses,
    Claude,
    false,
    true
);
cell!(
    responses_client_on_claude_provider_stream_text,
    Responses,
    Claude,
    true,
    false
);
cell!(
    responses_client_on_claude_provider_stream_tool,
    Responses,
    Claude,
    true,
    true
);
cell!(
    responses_client_on_openai_compatible_provider_json_text,
    Responses,
    OpenAi,
    false,
    false
);
cell!(
    responses_client_on_openai_compatible_provider_json_tool,
    Responses,
    OpenAi,
    false,
    true
);
cell!(
    responses_client_on_openai_compatible_provider_stream_text,
    Responses,
    OpenAi,
    true,
    false
);
cell!(
    responses_client_on_openai_compatible_provider_stream_tool,
    Responses,
    OpenAi,
    true,
    true
);
cell!(
    responses_client_on_codex_provider_json_text,
    Responses,
    Responses,
    false,
    false
);
cell!(
    responses_client_on_codex_provider_json_tool,
    Responses,
    Responses,
    false,
    true
);
cell!(
    responses_client_on_codex_provider_stream_text,
    Responses,
    Responses,
    true,
    false
);
cell!(
    responses_client_on_codex_provider_stream_tool,
    Responses,
    Responses,
    true,
    true
);
cell!(
    responses_client_on_gemini_provider_json_text,
    Responses,
    Gemini,
    false,
    false
);
cell!(
    responses_client_on_gemini_provider_json_tool,
    Responses,
    Gemini,
    false,
    true
);
cell!(
    responses_client_on_gemini_provider_stream_text,
    Responses,
    Gemini,
    true,
    false
);
cell!(
    responses_client_on_gemini_provider_stream_tool,
    Responses,
    Gemini,
    true,
    true
);
cell!(
    gemini_client_on_claude_provider_json_text,
    Gemini,
    Claude,
    false,
    false
);
cell!(
    gemini_client_on_claude_provider_json_tool,
    Gemini,
    Claude,
    false,
    true
);
cell!(
    gemini_client_on_claude_provider_stream_text,
    Gemini,
    Claude,
    true,
    false
);
cell!(
    gemini_client_on_claude_provider_stream_tool,
    Gemini,
    Claude,
    true,
    true
);
cell!(
    gemini_client_on_openai_compatible_provider_json_text,
    Gemini,
    OpenAi,
    false,
    false
);
cell!(
    gemini_client_on_openai_compatible_provider_json_tool,
    Gemini,
    OpenAi,
    false,
    true
);
cell!(
    gemini_client_on_openai_compatible_provider_stream_text,
    Gemini,
    OpenAi,
    true,
    false
);
cell!(
    gemini_client_on_openai_compatible_provider_stream_tool,
    Gemini,
    OpenAi,
    true,
    true
);
cell!(
    gemini_client_on_codex_provider_json_text,
    Gemini,
    Responses,
    false,
    false
);
cell!(
    gemini_client_on_codex_provider_json_tool,
    Gemini,
    Responses,
    false,
    true
);
cell!(
    gemini_client_on_codex_provider_stream_text,
    Gemini,
    Responses,
    true,
    false
);
cell!(
    gemini_client_on_codex_provider_stream_tool,
    Gemini,
    Responses,
    true,
    true
);
cell!(
    gemini_client_on_gemini_provider_json_text,
    Gemini,
    Gemini,
    false,
    false
);
cell!(
    gemini_client_on_gemini_provider_json_tool,
    Gemini,
    Gemini,
    false,
    true
);
cell!(
    gemini_client_on_gemini_provider_stream_text,
    Gemini,
    Gemini,
    true,
    false
);
cell!(
    gemini_client_on_gemini_provider_stream_tool,
    Gemini,
    Gemini,
    true,
    true
);
