//! Issue 14 item 4, against the real binary: a corpus of hostile inputs replayed against every
//! client route and the admin API. Each must end in a 4xx (in the route's own error shape) or a
//! closed connection — never a 5xx or a stall — while a normal request on another connection
//! keeps being served quickly. Plus the two slow-client shapes: a body that trickles in
//! (closed by the body idle timeout) and a client that never reads its answer (closed by the
//! write timeout).

mod support;

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use support::bin::{ADMIN_TOKEN, CchProcess, read_until_closed, spawn};
use support::fake_upstream::{FakeUpstream, Reply};
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpSocket, TcpStream};

const BIN: &str = env!("CARGO_BIN_EXE_cch");
const BOUND_MS: u64 = 1_000;

/// A client route: path, how the key is passed, and how its error body is recognised.
struct Route {
    path: &'static str,
    key_header: &'static str,
    /// A JSON pointer present in this route's error shape.
    error_pointer: &'static str,
}

const ROUTES: &[Route] = &[
    Route {
        path: "/v1/messages",
        key_header: "x-api-key",
        error_pointer: "/error/type",
    },
    Route {
        path: "/v1/messages/count_tokens",
        key_header: "x-api-key",
        error_pointer: "/error/type",
    },
    Route {
        path: "/v1/chat/completions",
        key_header: "authorization",
        error_pointer: "/error/message",
    },
    Route {
        path: "/v1/responses",
        key_header: "authorization",
        error_pointer: "/error/message",
    },
    Route {
        path: "/v1beta/models/claude-test:generateContent",
        key_header: "x-goog-api-key",
        error_pointer: "/error/status",
    },
    Route {
        path: "/v1beta/models/claude-test:streamGenerateContent?alt=sse",
        key_header: "x-goog-api-key",
        error_pointer: "/error/status",
    },
    Route {
        path: "/v1beta/models/claude-test:countTokens",
        key_header: "x-goog-api-key",
        error_pointer: "/error/status",
    },
];

/// Hostile bodies: (name, bytes, must be refused). Bodies not marked "must be refused" are
/// legal JSON a gateway may accept (duplicate keys, huge but finite numbers): they must not
/// produce a 5xx, whatever the answer.
fn corpus() -> Vec<(&'static str, Vec<u8>, bool)> {
    let deep = |n: usize| {
        format!(
            "{{\"model\":\"claude-test\",\"max_tokens\":5,\"messages\":[{{\"role\":\"user\",\"content\":{}1{}}}]}}",
            "[".repeat(n),
            "]".repeat(n)
        )
        .into_bytes()
    };
    let mut invalid_utf8 =
        br#"{"model":"claude-test","max_tokens":5,"messages":[{"role":"user","content":"a"#
            .to_vec();
    invalid_utf8.extend_from_slice(&[0xff, 0xfe, 0xc3]);
    invalid_utf8.extend_from_slice(br#""}]}"#);
    vec![
        ("deep JSON (10 000 levels)", deep(10_000), true),
        ("deep JSON (200 levels)", deep(200), true),
        (
            "deep object nesting",
            format!(
                "{{\"model\":\"claude-test\",\"x\":{}1{}}}",
                "{\"a\":".repeat(5_000),
                "}".repeat(5_000)
            )
            .into_bytes(),
            true,
        ),
        ("invalid UTF-8 in a string", invalid_utf8, true),
        ("lone surrogate escape", br#"{"model":"claude-test","max_tokens":5,"messages":[{"role":"user","content":"\ud800"}]}"#.to_vec(), false),
        ("number out of range", br#"{"model":"claude-test","max_tokens":1e400,"messages":[]}"#.to_vec(), false),
        (
            "huge integer",
            format!(
                "{{\"model\":\"claude-test\",\"max_tokens\":{},\"messages\":[{{\"role\":\"user\",\"content\":\"hi\"}}]}}",
                "9".repeat(4_000)
            )
            .into_bytes(),
            false,
        ),
        ("negative max_tokens", br#"{"model":"claude-test","max_tokens":-1,"messages":[{"role":"user","content":"hi"}]}"#.to_vec(), false),
        ("duplicate keys", br#"{"model":"claude-test","model":"claude-test","max_tokens":5,"messages":[{"role":"user","content":"hi","content":"ho"}]}"#.to_vec(), false),
        ("top-level array", b"[1,2,3]".to_vec(), true),
        ("top-level string", b"\"hello\"".to_vec(), true),
        ("truncated JSON", br#"{"model":"claude-test","messages":[{"#.to_vec(), true),
        ("empty body", Vec::new(), true),
        ("NUL bytes", b"\0\0\0\0".to_vec(), true),
        ("model of wrong type", br#"{"model":{"a":1},"messages":[]}"#.to_vec(), true),
        ("messages of wrong type", br#"{"model":"claude-test","max_tokens":5,"messages":"hi"}"#.to_vec(), false),
        ("trailing garbage", br#"{"model":"claude-test"} garbage"#.to_vec(), true),
    ]
}

/// A provider serving every client format (conversion through Claude), and a key.
async fn setup(cch: &CchProcess, up: &FakeUpstream) -> String {
    cch.admin_post(
        "/api/v1/providers",
        json!({"name": "all", "provider_type": "claude", "base_url": up.url(), "api_key": "sk-up",
               "extra_client_formats": ["openai", "response", "gemini"]}),
    )
    .await;
    let user = cch.admin_post("/api/v1/users", json!({"name": "u"})).await;
    let key = cch
        .admin_post(
            &format!("/api/v1/users/{}/keys", user["id"]),
            json!({"name": "k"}),
        )
        .await;
    key["key"].as_str().unwrap_or_default().to_string()
}

fn with_key(req: reqwest::RequestBuilder, header: &str, key: &str) -> reqwest::RequestBuilder {
    match header {
        "authorization" => req.bearer_auth(key),
        h => req.header(h, key),
    }
}

/// A normal Claude request answered within two seconds (another connection each time).
async fn assert_normal_request_is_fast(cch: &CchProcess, key: &str, during: &str) {
    let started = Instant::now();
    let r = reqwest::Client::new()
        .post(cch.url("/v1/messages"))
        .header("x-api-key", key)
        .header("anthropic-version", "2023-06-01")
        .json(&json!({"model": "claude-test", "max_tokens": 5,
                      "messages": [{"role": "user", "content": "hi"}]}))
        .timeout(Duration::from_secs(10))
        .send()
        .await;
    let status = r.as_ref().map(|r| r.status().as_u16()).unwrap_or(0);
    assert_eq!(status, 200, "normal request during {during}: {r:?}");
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "normal request during {during} took {:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn hostile_bodies_get_4xx_in_the_routes_shape_and_never_5xx() {
    let up = FakeUpstream::start().await;
    up.set_default(Reply::text("ok"));
    let cch = spawn(BIN, &[]).await;
    let key = setup(&cch, &up).await;
    let http = reqwest::Client::new();
    let mut refused = 0;
    for route in ROUTES {
        for (name, body, must_refuse) in corpus() {
            let req = http
                .post(cch.url(route.path))
                .header("content-type", "application/json")
                .header("anthropic-version", "2023-06-01")
                .timeout(Duration::from_secs(10))
                .body(body);
            let r = with_key(req, route.key_header, &key).send().await;
            let Ok(r) = r else {
                // A closed connection is an acceptable answer to hostile input.
                continue;
            };
            let status = r.status().as_u16();
            let text = r.text().await.unwrap_or_default();
            assert!(
                status < 500,
                "{} / {name}: {status} {}",
                route.path,
                text.chars().take(300).collect::<String>()
            );
            if must_refuse {
                assert!(
                    (400..500).contains(&status),
                    "{} / {name}: accepted with {status}",
                    route.path
                );
                let v: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
                assert!(
                    v.pointer(route.error_pointer).is_some(),
                    "{} / {name}: error not in the route's shape: {text}",
                    route.path
                );
                refused += 1;
            }
        }
        assert_normal_request_is_fast(&cch, &key, route.path).await;
    }
    assert!(refused >= ROUTES.len() * 10, "only {refused} refusals");

    // Admin routes: the same corpus on JSON endpoints.
    for path in ["/api/v1/users", "/api/v1/providers", "/api/v1/settings"] {
        for (name, body, _) in corpus() {
            let r = http
                .post(cch.url(path))
                .bearer_auth(ADMIN_TOKEN)
                .header("content-type", "application/json")
                .timeout(Duration::from_secs(10))
                .body(body)
                .send()
                .await;
            if let Ok(r) = r {
                let status = r.status().as_u16();
                assert!(status < 500, "{path} / {name}: {status}");
            }
        }
    }
    assert_normal_request_is_fast(&cch, &key, "admin corpus").await;
}

#[tokio::test]
async fn oversized_headers_and_connection_floods_leave_cch_serving() {
    let up = FakeUpstream::start().await;
    up.set_default(Reply::text("ok"));
    let cch = spawn(BIN, &[]).await;
    let key = setup(&cch, &up).await;
    let http = reqwest::Client::new();
    // One huge header value, and many headers.
    let huge = "a".repeat(200 * 1024);
    let r = http
        .post(cch.url("/v1/messages"))
        .header("x-api-key", &key)
        .header("x-big", &huge)
        .body("{}")
        .timeout(Duration::from_secs(10))
        .send()
        .await;
    if let Ok(r) = r {
        let s = r.status().as_u16();
        assert!((400..500).contains(&s), "200 KiB header: {s}");
    }
    let mut raw = String::from("POST /v1/chat/completions HTTP/1.1\r\nhost: cch\r\n");
    for i in 0..5_000 {
        raw.push_str(&format!("x-h{i}: v\r\n"));
    }
    raw.push_str("content-length: 2\r\n\r\n{}");
    let mut s = TcpStream::connect(&cch.addr).await.unwrap();
    let _ = s.write_all(raw.as_bytes()).await;
    let (answer, closed) = read_until_closed(&mut s, Duration::from_secs(10)).await;
    let answer = String::from_utf8_lossy(&answer);
    assert!(
        closed || answer.starts_with("HTTP/1.1 4"),
        "5 000 headers: {answer:.200}"
    );
    assert!(
        !answer.starts_with("HTTP/1.1 5"),
        "5 000 headers: {answer:.200}"
    );
    assert_normal_request_is_fast(&cch, &key, "oversized headers").await;

    // A flood: 400 connections sending garbage at once, then a normal request.
    let mut tasks = Vec::new();
    for i in 0..400 {
        let addr = cch.addr.clone();
        tasks.push(tokio::spawn(async move {
            if let Ok(mut s) = TcpStream::connect(&addr).await {
                let junk = if i % 2 == 0 {
                    b"\x16\x03\x01\x02\x00garbage\r\n\r\n".to_vec()
                } else {
                    b"GET / HTTP/1.1\r\nhost: x\r\ncontent-length: 99999999999999999999\r\n\r\n"
                        .to_vec()
                };
                let _ = s.write_all(&junk).await;
                let (answer, _) = read_until_closed(&mut s, Duration::from_secs(5)).await;
                assert!(
                    !String::from_utf8_lossy(&answer).starts_with("HTTP/1.1 5"),
                    "flood connection got a 5xx"
                );
            }
        }));
    }
    assert_normal_request_is_fast(&cch, &key, "a connection flood").await;
    for t in tasks {
        t.await.unwrap();
    }
    assert_normal_request_is_fast(&cch, &key, "after a connection flood").await;
}

#[tokio::test]
async fn slow_upload_and_a_client_that_never_reads_are_both_closed() {
    let up = FakeUpstream::start().await;
    let ms = BOUND_MS.to_string();
    let cch = spawn(
        BIN,
        &[
            ("CLIENT_BODY_IDLE_TIMEOUT_MS", &ms),
            ("CLIENT_WRITE_TIMEOUT_MS", &ms),
        ],
    )
    .await;
    let key = setup(&cch, &up).await;

    // Slowloris body: a few bytes, then silence. Answer: 408/400 or a closed connection.
    let mut s = TcpStream::connect(&cch.addr).await.unwrap();
    let head = format!(
        "POST /v1/messages HTTP/1.1\r\nhost: cch\r\nx-api-key: {key}\r\n\
         content-type: application/json\r\ncontent-length: 500\r\n\r\n{{\"model\":"
    );
    s.write_all(head.as_bytes()).await.unwrap();
    let started = Instant::now();
    let (answer, closed) = read_until_closed(&mut s, Duration::from_secs(10)).await;
    assert!(closed, "stalled upload still open after 10 s");
    assert!(started.elapsed() < Duration::from_millis(BOUND_MS + 3_000));
    let answer = String::from_utf8_lossy(&answer);
    assert!(
        answer.is_empty() || answer.starts_with("HTTP/1.1 4"),
        "stalled upload: {answer:.200}"
    );

    // Slow download: a 24 MiB streamed answer to a client with a tiny receive buffer that
    // never reads. Kernel buffers absorb a few MiB; the rest must not hold the connection.
    up.set_default(Reply::text("ok"));
    up.push(Reply::stream("y".repeat(24 << 20)));
    let socket = TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let mut s = socket.connect(cch.addr.parse().unwrap()).await.unwrap();
    let body = json!({"model": "claude-test", "max_tokens": 5, "stream": true,
                      "messages": [{"role": "user", "content": "hi"}]})
    .to_string();
    let req = format!(
        "POST /v1/messages HTTP/1.1\r\nhost: cch\r\nx-api-key: {key}\r\n\
         anthropic-version: 2023-06-01\r\ncontent-type: application/json\r\n\
         content-length: {}\r\n\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes()).await.unwrap();
    // Meanwhile other clients are served.
    assert!(up.wait_for_requests(1, Duration::from_secs(5)).await);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_normal_request_is_fast(&cch, &key, "a client that never reads").await;
    // Well past the write timeout, drain what was sent: the answer must be cut short and the
    // connection closed (without the timeout the full answer arrives and it stays open).
    tokio::time::sleep(Duration::from_millis(BOUND_MS * 4)).await;
    let (answer, closed) = read_until_closed(&mut s, Duration::from_secs(20)).await;
    assert!(closed, "connection not closed; read {} bytes", answer.len());
    assert!(
        answer.len() < 24 << 20,
        "the whole answer was held for a client that did not read"
    );
    assert!(
        !String::from_utf8_lossy(&answer).contains("message_stop"),
        "answer completed: the write was never timed out"
    );
}
