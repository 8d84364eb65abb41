//! The fake-200 fault matrix (issue 12 item 2): every shape of "success that is not an answer"
//! that relays produce, for a non-streaming and a streaming request, on every provider type.
//! Each cell puts a bad provider (priority 0, one try) in front of a healthy one of the same
//! type and checks that the client gets the healthy answer, that the provider chain names the
//! detection on the bad provider's attempt, and that the bad provider's breaker counted one
//! failure. Shapes follow `shared/docs/protocols.md` E11/E12 and the original project's
//! `upstream-error-detection.ts` list (empty body, HTML, JSON error, `response.failed`).

mod support;

use std::time::Duration;

use claude_code_hub::domain::request_log::{LogFilter, RequestLog};
use serde_json::{Value, json};
use support::app::{TestApp, spawn_app};
use support::fake_upstream::fake_formats::WireFormat;
use support::fake_upstream::{FakeUpstream, Reply};

use WireFormat::{Claude, Gemini, OpenAiChat as OpenAi, Responses};

const MODEL: &str = "gate-model-1";
const ANSWER: &str = "A real answer from the healthy provider.";

fn provider_type(f: WireFormat) -> &'static str {
    match f {
        Claude => "claude",
        OpenAi => "openai-compatible",
        Responses => "codex",
        Gemini => "gemini",
    }
}

/// One fake success: its name in the chain and the reply that produces it.
struct Shape {
    detection: &'static str,
    reply: Reply,
}

fn shape(detection: &'static str, reply: Reply) -> Shape {
    Shape { detection, reply }
}

fn sse(body: &str) -> Reply {
    Reply::raw(200, "text/event-stream", body.as_bytes().to_vec())
}

/// Shapes any provider can send in place of a JSON answer (and of a stream: a non-SSE body).
fn body_shapes() -> Vec<Shape> {
    vec![
        shape(
            "fake_200_html",
            Reply::raw(
                200,
                "text/html",
                "<!DOCTYPE html><html><body>502 Bad Gateway</body></html>",
            ),
        ),
        shape(
            "fake_200_empty_body",
            Reply::raw(200, "application/json", Vec::new()),
        ),
        shape(
            "fake_200_json_error",
            Reply::status(
                200,
                json!({"error": {"message": "no available channel", "type": "relay_error"}}),
            ),
        ),
        shape(
            "fake_200_response_failed",
            Reply::status(
                200,
                json!({"id": "resp_x", "object": "response", "status": "failed",
                       "error": {"code": "server_error", "message": "backend failed"}, "output": []}),
            ),
        ),
        shape(
            "fake_200_not_json",
            Reply::raw(200, "text/plain", "upstream connect error or disconnect"),
        ),
    ]
}

/// Stream shapes in the provider's own format: an error as the first event, a stream that
/// ends after its preamble, and an event stream with no events at all.
fn stream_shapes(f: WireFormat) -> Vec<Shape> {
    let (error_first, preamble) = match f {
        Claude => (
            "event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\",\"message\":\"Overloaded\"}}\n\n",
            "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_x\",\"type\":\"message\",\"role\":\"assistant\",\"model\":\"m\",\"content\":[],\"stop_reason\":null,\"usage\":{\"input_tokens\":3,\"output_tokens\":0}}}\n\nevent: ping\ndata: {\"type\":\"ping\"}\n\n",
        ),
        OpenAi => (
            "data: {\"error\":{\"message\":\"no available channel\",\"type\":\"relay_error\"}}\n\n",
            "data: {\"id\":\"c1\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"m\",\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"\"},\"finish_reason\":null}]}\n\n",
        ),
        Responses => (
            "event: error\ndata: {\"type\":\"error\",\"code\":\"server_error\",\"message\":\"backend failed\",\"sequence_number\":0}\n\n",
            "event: response.created\ndata: {\"type\":\"response.created\",\"sequence_number\":0,\"response\":{\"id\":\"resp_x\",\"object\":\"response\",\"created_at\":1,\"status\":\"in_progress\",\"model\":\"m\",\"output\":[]}}\n\n",
        ),
        Gemini => (
            "data: {\"error\":{\"code\":503,\"message\":\"The model is overloaded.\",\"status\":\"UNAVAILABLE\"}}\n\n",
            "data: {\"candidates\":[{\"content\":{\"role\":\"model\",\"parts\":[]},\"index\":0}],\"modelVersion\":\"m\"}\n\n",
        ),
    };
    let mut out = vec![
        shape("stream_error_before_content", sse(error_first)),
        shape("empty_stream", sse(preamble)),
        shape("empty_stream", sse("")),
    ];
    if f == Responses {
        out.push(shape(
            "fake_200_response_failed",
            sse("event: response.created\ndata: {\"type\":\"response.created\",\"sequence_number\":0,\"response\":{\"id\":\"resp_x\",\"object\":\"response\",\"created_at\":1,\"status\":\"in_progress\",\"model\":\"m\",\"output\":[]}}\n\nevent: response.failed\ndata: {\"type\":\"response.failed\",\"sequence_number\":1,\"response\":{\"id\":\"resp_x\",\"object\":\"response\",\"status\":\"failed\",\"error\":{\"code\":\"server_error\",\"message\":\"backend failed\"},\"output\":[]}}\n\n"),
        ));
    }
    out
}

async fn add_provider(t: &TestApp, name: &str, f: WireFormat, url: &str, priority: i64) -> i64 {
    let extra: Vec<&str> = if f == Claude { vec![] } else { vec!["claude"] };
    let (status, p) = t
        .post(
            "/api/v1/providers",
            json!({"name": name, "provider_type": provider_type(f), "base_url": url,
                   "api_key": format!("sk-{name}"), "priority": priority,
                   "max_retry_attempts": 1, "extra_client_formats": extra}),
        )
        .await;
    assert_eq!(status, 201, "{p}");
    p["id"].as_i64().unwrap()
}

async fn add_key(t: &TestApp) -> String {
    let (status, u) = t.post("/api/v1/users", json!({"name": "u"})).await;
    assert_eq!(status, 201, "{u}");
    let (status, k) = t
        .post(
            &format!("/api/v1/users/{}/keys", u["id"]),
            json!({"name": "k"}),
        )
        .await;
    assert_eq!(status, 201, "{k}");
    k["key"].as_str().unwrap().to_string()
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

/// The text a Claude client read: the JSON answer's text, or the text deltas of a stream.
fn claude_text(body: &str, stream: bool) -> String {
    if !stream {
        let v: Value = serde_json::from_str(body).unwrap_or(Value::Null);
        return v["content"][0]["text"].as_str().unwrap_or("").to_string();
    }
    body.lines()
        .filter_map(|l| l.strip_prefix("data: "))
        .filter_map(|d| serde_json::from_str::<Value>(d).ok())
        .filter(|v| v["type"] == "content_block_delta")
        .filter_map(|v| v["delta"]["text"].as_str().map(str::to_string))
        .collect()
}

async fn run_cell(f: WireFormat, stream: bool, s: Shape) {
    let bad = FakeUpstream::start().await;
    let good = FakeUpstream::start().await;
    bad.set_default(s.reply);
    good.set_default(Reply::text(ANSWER));
    let t = spawn_app(&[]).await;
    let bad_id = add_provider(&t, "bad", f, &bad.url(), 0).await;
    let good_id = add_provider(&t, "good", f, &good.url(), 1).await;
    let key = add_key(&t).await;
    let cell = format!("{f:?} stream={stream} {}", s.detection);

    let r = t
        .http
        .post(t.url("/v1/messages"))
        .header("x-api-key", &key)
        .header("anthropic-version", "2023-06-01")
        .json(&json!({"model": MODEL, "max_tokens": 100, "stream": stream,
                      "messages": [{"role": "user", "content": "hi"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200, "{cell}");
    let body = r.text().await.unwrap();
    assert_eq!(claude_text(&body, stream), ANSWER, "{cell}: {body}");
    assert_eq!(
        bad.request_count(),
        1,
        "{cell}: the bad provider was tried once"
    );
    assert_eq!(good.request_count(), 1, "{cell}");

    let row = log_row(&t).await;
    assert_eq!(row.status_code, 200, "{cell}");
    let chain = row.provider_chain.clone();
    assert_eq!(chain[0]["provider_id"], bad_id, "{cell}: {chain}");
    assert_eq!(chain[0]["outcome"], "failure", "{cell}: {chain}");
    assert_eq!(chain[0]["status"], 200, "{cell}: {chain}");
    assert_eq!(chain[0]["error_class"], "provider_error", "{cell}: {chain}");
    assert_eq!(chain[0]["detection"], s.detection, "{cell}: {chain}");
    assert_eq!(chain[1]["provider_id"], good_id, "{cell}: {chain}");
    assert_eq!(chain[1]["reason"], "failover", "{cell}: {chain}");
    assert_eq!(chain[1]["outcome"], "success", "{cell}: {chain}");

    let (status, b) = t.get(&format!("/api/v1/providers/{bad_id}/breaker")).await;
    assert_eq!(status, 200, "{b}");
    assert_eq!(b["failure_count"], 1, "{cell}: breaker {b}");
    let (_, g) = t.get(&format!("/api/v1/providers/{good_id}/breaker")).await;
    assert_eq!(g["failure_count"], 0, "{cell}: breaker {g}");
    t.app.shutdown().await.unwrap();
}

async fn run_matrix(f: WireFormat, stream: bool) {
    let mut shapes = body_shapes();
    if stream {
        shapes.extend(stream_shapes(f));
    }
    for s in shapes {
        run_cell(f, stream, s).await;
    }
}

#[tokio::test]
async fn claude_provider_json() {
    run_matrix(Claude, false).await;
}

#[tokio::test]
async fn claude_provider_stream() {
    run_matrix(Claude, true).await;
}

#[tokio::test]
async fn openai_compatible_provider_json() {
    run_matrix(OpenAi, false).await;
}

#[tokio::test]
async fn openai_compatible_provider_stream() {
    run_matrix(OpenAi, true).await;
}

#[tokio::test]
async fn codex_provider_json() {
    run_matrix(Responses, false).await;
}

#[tokio::test]
async fn codex_provider_stream() {
    run_matrix(Responses, true).await;
}

#[tokio::test]
async fn gemini_provider_json() {
    run_matrix(Gemini, false).await;
}

#[tokio::test]
async fn gemini_provider_stream() {
    run_matrix(Gemini, true).await;
}

/// A healthy stream whose content comes late is held only until that content, then flows;
/// one that stalls past the first-byte deadline before any content is released, not failed.
#[tokio::test]
async fn held_streams_are_released_at_content_or_at_the_first_byte_deadline() {
    let up = FakeUpstream::start().await;
    let t = spawn_app(&[]).await;
    let (status, p) = t
        .post(
            "/api/v1/providers",
            json!({"name": "p", "provider_type": "claude", "base_url": up.url(),
                   "api_key": "sk-p", "first_byte_timeout_ms": 1000}),
        )
        .await;
    assert_eq!(status, 201, "{p}");
    let key = add_key(&t).await;
    let send = || {
        t.http
            .post(t.url("/v1/messages"))
            .header("x-api-key", &key)
            .json(&json!({"model": MODEL, "max_tokens": 100, "stream": true,
                          "messages": [{"role": "user", "content": "hi"}]}))
            .send()
    };
    // message_start, content_block_start, ping arrive at once; the first delta 300 ms later.
    up.push(Reply::stream(ANSWER).stall_after_events(3, Duration::from_millis(300)));
    let r = send().await.unwrap();
    assert_eq!(r.status().as_u16(), 200);
    assert_eq!(claude_text(&r.text().await.unwrap(), true), ANSWER);

    // Bookkeeping only for 5 s (past the 1 s deadline): released at the deadline, the client
    // gets the whole answer, the request is a success.
    up.push(Reply::stream(ANSWER).stall_after_events(2, Duration::from_millis(5000)));
    let started = std::time::Instant::now();
    let mut r = send().await.unwrap();
    let first = r.chunk().await.unwrap().unwrap_or_default();
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(900) && waited < Duration::from_millis(4500),
        "released at the deadline, after {waited:?}"
    );
    assert!(String::from_utf8_lossy(&first).contains("message_start"));
    let mut rest = String::from_utf8_lossy(&first).to_string();
    while let Some(c) = r.chunk().await.unwrap() {
        rest.push_str(&String::from_utf8_lossy(&c));
    }
    assert_eq!(claude_text(&rest, true), ANSWER);
    t.app.shutdown().await.unwrap();
}
