//! Traces over OTLP (issue 15, item 3): the real binary with `OTEL_EXPORTER_OTLP_ENDPOINT`
//! pointing at a small OTLP/HTTP receiver in this test. A request that fails on one provider and
//! is served by another arrives as one trace whose id is the `x-cch-request-id` the client got
//! and the request-log row's id, with spans for the limits, the routing, each upstream attempt
//! (provider, status, error class) and the log write. Without the variable nothing is sent and
//! every answer still carries the header.

mod support;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::any_value::Value as AnyValue;
use opentelemetry_proto::tonic::trace::v1::Span;
use prost::Message as _;
use serde_json::json;
use support::bin;
use support::fake_upstream::{FakeUpstream, Reply};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

const BIN: &str = env!("CARGO_BIN_EXE_cch");

/// An OTLP/HTTP receiver: keeps every span of every `POST /v1/traces` it gets.
struct Receiver {
    url: String,
    spans: Arc<Mutex<Vec<Span>>>,
    posts: Arc<Mutex<Vec<String>>>,
}

async fn receiver() -> Receiver {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let spans = Arc::new(Mutex::new(Vec::new()));
    let posts = Arc::new(Mutex::new(Vec::new()));
    let (s, p) = (spans.clone(), posts.clone());
    tokio::spawn(async move {
        while let Ok((mut conn, _)) = listener.accept().await {
            let (s, p) = (s.clone(), p.clone());
            tokio::spawn(async move {
                loop {
                    let Some((head, body)) = read_request(&mut conn).await else {
                        return;
                    };
                    p.lock()
                        .unwrap()
                        .push(head.lines().next().unwrap_or("").to_string());
                    if let Ok(req) = ExportTraceServiceRequest::decode(body.as_slice()) {
                        for rs in req.resource_spans {
                            for ss in rs.scope_spans {
                                s.lock().unwrap().extend(ss.spans);
                            }
                        }
                    }
                    let answer = "HTTP/1.1 200 OK\r\ncontent-type: application/x-protobuf\r\ncontent-length: 0\r\n\r\n";
                    if conn.write_all(answer.as_bytes()).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    Receiver { url, spans, posts }
}

/// Reads one HTTP/1.1 request with a `content-length` body: (head, body).
async fn read_request(conn: &mut tokio::net::TcpStream) -> Option<(String, Vec<u8>)> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        let n = conn.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
    let len: usize = head
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case("content-length")
                .then(|| v.trim().parse().ok())?
        })
        .unwrap_or(0);
    while buf.len() < head_end + len {
        let n = conn.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    Some((head, buf[head_end..head_end + len].to_vec()))
}

fn attr(span: &Span, key: &str) -> Option<String> {
    span.attributes
        .iter()
        .find(|kv| kv.key == key)
        .and_then(|kv| match kv.value.as_ref()?.value.as_ref()? {
            AnyValue::StringValue(s) => Some(s.clone()),
            AnyValue::IntValue(i) => Some(i.to_string()),
            AnyValue::BoolValue(b) => Some(b.to_string()),
            other => Some(format!("{other:?}")),
        })
}

/// Two Claude providers: `first` (better priority, one try) and `second`; a user and key.
async fn two_providers(cch: &bin::CchProcess, first: &str, second: &str) -> String {
    for (name, url, priority) in [("first", first, 0), ("second", second, 1)] {
        cch.admin_post(
            "/api/v1/providers",
            json!({"name": name, "provider_type": "claude", "base_url": url,
                   "api_key": format!("sk-{name}"), "priority": priority,
                   "max_retry_attempts": 1}),
        )
        .await;
    }
    let user = cch.admin_post("/api/v1/users", json!({"name": "u"})).await;
    let key = cch
        .admin_post(
            &format!("/api/v1/users/{}/keys", user["id"]),
            json!({"name": "k"}),
        )
        .await;
    key["key"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn a_failed_over_request_is_one_trace_named_by_its_request_id() {
    let otlp = receiver().await;
    let (bad, good) = (FakeUpstream::start().await, FakeUpstream::start().await);
    bad.set_default(Reply::error(500, "api_error", "upstream broke"));
    let cch = bin::spawn(
        BIN,
        &[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", otlp.url.as_str()),
            ("OTEL_BSP_SCHEDULE_DELAY", "100"),
        ],
    )
    .await;
    let key = two_providers(&cch, &bad.url(), &good.url()).await;

    let resp = cch
        .http
        .post(cch.url("/v1/messages"))
        .header("x-api-key", &key)
        .header("anthropic-version", "2023-06-01")
        .json(&json!({"model": "claude-sonnet-4", "max_tokens": 16,
                      "messages": [{"role": "user", "content": "hi"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let request_id = resp.headers()["x-cch-request-id"]
        .to_str()
        .unwrap()
        .to_string();
    assert_eq!(request_id.len(), 32, "a W3C trace id in hex: {request_id}");

    // The spans arrive within a few export intervals.
    let mut spans = Vec::new();
    for _ in 0..100 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        spans = otlp.spans.lock().unwrap().clone();
        if spans.iter().any(|s| s.name == "log_write")
            && spans.iter().any(|s| s.name == "POST /v1/messages")
        {
            break;
        }
    }
    let names: Vec<&str> = spans.iter().map(|s| s.name.as_str()).collect();
    assert!(
        otlp.posts
            .lock()
            .unwrap()
            .iter()
            .all(|p| p.starts_with("POST /v1/traces ")),
        "{:?}",
        otlp.posts.lock().unwrap()
    );
    let trace: Vec<&Span> = spans
        .iter()
        .filter(|s| hex(&s.trace_id) == request_id)
        .collect();
    assert!(
        !trace.is_empty(),
        "no span has trace id {request_id}: {names:?}"
    );
    let root = trace
        .iter()
        .find(|s| s.parent_span_id.is_empty())
        .unwrap_or_else(|| panic!("no root span: {names:?}"));
    assert_eq!(root.name, "POST /v1/messages");
    assert_eq!(
        attr(root, "http.response.status_code").as_deref(),
        Some("200")
    );
    // What the receiver got, printed for the record (`--no-capture`).
    for s in &trace {
        let attrs: Vec<String> = s
            .attributes
            .iter()
            .map(|kv| format!("{}={}", kv.key, attr(s, &kv.key).unwrap_or_default()))
            .collect();
        eprintln!(
            "span {} parent {} {:>5} µs {:<18} {}",
            hex(&s.span_id),
            if s.parent_span_id.is_empty() {
                "-".repeat(16)
            } else {
                hex(&s.parent_span_id)
            },
            (s.end_time_unix_nano.saturating_sub(s.start_time_unix_nano)) / 1000,
            s.name,
            attrs.join(" ")
        );
    }
    let children = |name: &str| -> Vec<&&Span> {
        trace
            .iter()
            .filter(|s| s.name == name && s.parent_span_id == root.span_id)
            .collect()
    };
    assert_eq!(children("limits").len(), 1, "{names:?}");
    assert!(!children("routing").is_empty(), "{names:?}");
    assert_eq!(children("log_write").len(), 1, "{names:?}");
    let attempts = children("upstream_attempt");
    assert_eq!(attempts.len(), 2, "{names:?}");
    let mut seen: Vec<(String, String, Option<String>)> = attempts
        .iter()
        .map(|s| {
            (
                attr(s, "cch.provider").unwrap_or_default(),
                attr(s, "http.response.status_code").unwrap_or_default(),
                attr(s, "cch.error_class"),
            )
        })
        .collect();
    seen.sort();
    assert_eq!(seen[0].0, "first");
    assert_eq!(seen[0].1, "500");
    assert!(seen[0].2.is_some(), "the failed try names its class");
    assert_eq!(seen[0].2.as_deref(), Some("provider_error"));
    assert_eq!(seen[1], ("second".into(), "200".into(), None));

    // The log row carries the same id (once the batched writer stored it).
    let mut rows = Vec::new();
    for _ in 0..50 {
        let logs: serde_json::Value = cch
            .http
            .get(cch.url("/api/v1/logs?limit=5"))
            .bearer_auth(bin::ADMIN_TOKEN)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        rows = logs["data"].as_array().cloned().unwrap_or_default();
        if !rows.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let logs = serde_json::Value::Array(rows.clone());
    assert_eq!(rows.len(), 1, "{logs}");
    assert_eq!(rows[0]["request_id"], request_id.as_str());
}

#[tokio::test]
async fn without_an_endpoint_traces_are_off_and_every_answer_still_has_an_id() {
    let up = FakeUpstream::start().await;
    let cch = bin::spawn(BIN, &[("OTEL_BSP_SCHEDULE_DELAY", "100")]).await;
    let (_, key) = cch.provider_and_key(&up.url()).await;
    let ok = cch
        .http
        .post(cch.url("/v1/messages"))
        .header("x-api-key", &key)
        .json(&json!({"model": "claude-sonnet-4", "max_tokens": 16,
                      "messages": [{"role": "user", "content": "hi"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 200);
    let refused = cch
        .http
        .post(cch.url("/v1/messages"))
        .header("x-api-key", "cch_wrong")
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 401);
    let health = cch.http.get(cch.url("/health")).send().await.unwrap();
    let ids: Vec<String> = [&ok, &refused, &health]
        .iter()
        .map(|r| {
            r.headers()["x-cch-request-id"]
                .to_str()
                .unwrap()
                .to_string()
        })
        .collect();
    assert!(ids.iter().all(|id| id.len() == 32));
    assert_ne!(ids[0], ids[1]);
    assert!(!cch.stderr.lock().unwrap().contains("exporting traces"));
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}
