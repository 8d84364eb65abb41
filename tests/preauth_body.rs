//! Issue 16, item 3, against the real binary: a missing, unknown or disabled key is refused from
//! the request head, before the body is sent; and the bytes of bodies buffered at once are
//! bounded (503 with `retry-after` when the budget is spent).

mod support;

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use support::bin::{ADMIN_TOKEN, read_until_closed, spawn};
use support::fake_upstream::FakeUpstream;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

const BIN: &str = env!("CARGO_BIN_EXE_cch");
/// 60 MiB: under the default MAX_BODY_BYTES (64 MiB), so only the key can refuse it.
const LARGE: usize = 60 << 20;

/// Sends a head announcing `LARGE` body bytes and the first KiB of the body, then waits for the
/// answer without sending the rest; returns it and how long it took.
async fn large_body_answer(addr: &str, path: &str, key_header: &str) -> (String, Duration) {
    let mut s = TcpStream::connect(addr).await.unwrap();
    let head = format!(
        "POST {path} HTTP/1.1\r\nhost: cch\r\n{key_header}content-type: application/json\r\n\
         content-length: {LARGE}\r\n\r\n"
    );
    s.write_all(head.as_bytes()).await.unwrap();
    s.write_all(&[b' '; 1024]).await.unwrap();
    let started = Instant::now();
    let (answer, closed) = read_until_closed(&mut s, Duration::from_secs(5)).await;
    assert!(closed, "answered and closed without the remaining body");
    (
        String::from_utf8_lossy(&answer).into_owned(),
        started.elapsed(),
    )
}

#[tokio::test]
async fn a_bad_key_is_refused_before_the_body_is_sent() {
    let up = FakeUpstream::start().await;
    let cch = spawn(BIN, &[]).await;
    let (key_id, key) = cch.provider_and_key(&up.url()).await;
    let r = cch
        .http
        .patch(cch.url(&format!("/api/v1/keys/{key_id}")))
        .bearer_auth(ADMIN_TOKEN)
        .json(&json!({"enabled": false}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    tokio::time::sleep(Duration::from_millis(200)).await;
    let cases = [
        (
            "/v1/messages",
            "x-api-key: cch_not_a_real_key_0000000000\r\n".to_string(),
            401,
            "authentication_error",
        ),
        ("/v1/messages", String::new(), 401, "authentication_error"),
        (
            "/v1/chat/completions",
            "authorization: Bearer cch_unknown\r\n".to_string(),
            401,
            "\"error\"",
        ),
        (
            "/v1/messages",
            format!("x-api-key: {key}\r\n"),
            403,
            "permission_error",
        ),
    ];
    for (path, key_header, status, shape) in cases {
        let (answer, took) = large_body_answer(&cch.addr, path, &key_header).await;
        assert!(
            answer.starts_with(&format!("HTTP/1.1 {status}")),
            "{path} {key_header:?}: {answer}"
        );
        assert!(answer.contains(shape), "{answer}");
        assert!(took < Duration::from_secs(2), "answered after {took:?}");
    }
    assert_eq!(up.request_count(), 0);
}

fn padded_request(pad: usize) -> Vec<u8> {
    json!({"model": "claude-sonnet-4-5", "max_tokens": 5,
           "messages": [{"role": "user", "content": "x".repeat(pad)}]})
    .to_string()
    .into_bytes()
}

#[tokio::test]
async fn buffered_body_bytes_are_bounded_with_503_and_retry_after() {
    let up = FakeUpstream::start().await;
    let cch = spawn(
        BIN,
        &[
            ("MAX_BODY_BYTES", "1048576"),
            ("MAX_BUFFERED_BODY_BYTES", "1048576"),
        ],
    )
    .await;
    let (_, key) = cch.provider_and_key(&up.url()).await;
    // A valid request announcing 900 KB and sending the first KiB: it holds 900 KB of budget.
    let mut holder = TcpStream::connect(&cch.addr).await.unwrap();
    let head = format!(
        "POST /v1/messages HTTP/1.1\r\nhost: cch\r\nx-api-key: {key}\r\n\
         content-type: application/json\r\ncontent-length: 900000\r\n\r\n"
    );
    holder.write_all(head.as_bytes()).await.unwrap();
    holder.write_all(&[b' '; 1024]).await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    // 200 KB more does not fit: refused at once, in the client's format, with retry-after.
    let body = padded_request(200_000);
    let send = || {
        cch.http
            .post(cch.url("/v1/messages"))
            .header("x-api-key", &key)
            .header("content-type", "application/json")
            .body(body.clone())
            .send()
    };
    let r = send().await.unwrap();
    assert_eq!(r.status(), 503);
    assert_eq!(
        r.headers().get("retry-after").and_then(|v| v.to_str().ok()),
        Some("2")
    );
    let err: Value = r.json().await.unwrap();
    assert_eq!(err["type"], "error");
    assert_eq!(err["error"]["type"], "overloaded_error");
    assert!(
        err["error"]["message"]
            .as_str()
            .unwrap()
            .contains("MAX_BUFFERED_BODY_BYTES")
    );
    assert_eq!(up.request_count(), 0);
    // The holder goes away: its budget comes back and the same request is served.
    drop(holder);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let r = send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(up.request_count(), 1);
    let got = up.last_request().unwrap();
    let content = &got.json.unwrap()["messages"][0]["content"];
    assert_eq!(
        content.as_str().map(str::len),
        Some(200_000),
        "the whole body reached the provider"
    );
}
