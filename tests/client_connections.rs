//! Issue 16, item 2, against the real binary: slow or idle clients are closed within their
//! bounds, a normal request is served while thousands of idle connections are held, and
//! connections beyond the cap are refused at once (one log line per burst).

mod support;

use std::time::{Duration, Instant};

use serde_json::json;
use support::bin::{ADMIN_TOKEN, CchProcess, read_until_closed, spawn};
use support::fake_upstream::FakeUpstream;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

const BIN: &str = env!("CARGO_BIN_EXE_cch");
const BOUND_MS: u64 = 1_000;

fn head(key: &str, extra: &str) -> String {
    format!(
        "POST /v1/messages HTTP/1.1\r\nhost: cch\r\nx-api-key: {key}\r\n\
         anthropic-version: 2023-06-01\r\ncontent-type: application/json\r\n{extra}\r\n"
    )
}

/// Opens a connection, sends `bytes`, then waits: returns how long the server took to close it
/// and what it answered.
async fn slow_shape(addr: &str, bytes: Vec<u8>) -> (Duration, String) {
    let mut s = TcpStream::connect(addr).await.unwrap();
    let started = Instant::now();
    if !bytes.is_empty() {
        s.write_all(&bytes).await.unwrap();
    }
    let (answer, closed) = read_until_closed(&mut s, Duration::from_secs(10)).await;
    assert!(closed, "connection still open after 10 s");
    (
        started.elapsed(),
        String::from_utf8_lossy(&answer).into_owned(),
    )
}

fn assert_bounded(shape: &str, took: Duration, extra_ms: u64) {
    let bound = Duration::from_millis(BOUND_MS + extra_ms);
    assert!(
        took >= Duration::from_millis(BOUND_MS * 8 / 10),
        "{shape}: closed after {took:?}, before its bound: it was not the timeout"
    );
    assert!(
        took <= bound + Duration::from_millis(3_000),
        "{shape}: closed after {took:?}, bound {bound:?}"
    );
}

#[tokio::test]
async fn every_slow_shape_is_closed_within_its_bound() {
    let up = FakeUpstream::start().await;
    let ms = BOUND_MS.to_string();
    let cch = spawn(
        BIN,
        &[
            ("CLIENT_HEADER_TIMEOUT_MS", &ms),
            ("CLIENT_BODY_IDLE_TIMEOUT_MS", &ms),
            ("CLIENT_KEEPALIVE_TIMEOUT_MS", &ms),
        ],
    )
    .await;
    let (_, key) = cch.provider_and_key(&up.url()).await;
    let addr = cch.addr.clone();
    let valid = |extra: &str| head(&key, extra);
    let shapes: Vec<(&str, Vec<u8>)> = vec![
        ("nothing at all", Vec::new()),
        ("half a request line", b"POST /v1/mess".to_vec()),
        (
            "half the headers",
            b"POST /v1/messages HTTP/1.1\r\nhost: cch\r\nx-api-".to_vec(),
        ),
        (
            "half a chunked body",
            format!(
                "{}10\r\n{{\"model\":\"cl",
                valid("transfer-encoding: chunked\r\n")
            )
            .into_bytes(),
        ),
        (
            "fewer bytes than content-length",
            format!("{}{{\"model\":", valid("content-length: 200\r\n")).into_bytes(),
        ),
        (
            "admin route, fewer bytes than content-length",
            format!(
                "POST /api/v1/users HTTP/1.1\r\nhost: cch\r\nauthorization: Bearer {ADMIN_TOKEN}\r\n\
                 content-type: application/json\r\ncontent-length: 100\r\n\r\n{{\"na"
            )
            .into_bytes(),
        ),
    ];
    let mut tasks = Vec::new();
    for (name, bytes) in shapes {
        let addr = addr.clone();
        tasks.push(tokio::spawn(async move {
            (name, slow_shape(&addr, bytes).await)
        }));
    }
    // Idle keep-alive: one complete request, then silence (twenty of them, since the
    // connection turns idle as the response ends, which races with the server's next read).
    let keepalive: Vec<_> = (0..20)
        .map(|_| {
            let addr = addr.clone();
            tokio::spawn(async move {
                let mut s = TcpStream::connect(&addr).await.unwrap();
                s.write_all(b"GET /health HTTP/1.1\r\nhost: cch\r\n\r\n")
                    .await
                    .unwrap();
                let mut first = [0u8; 12];
                tokio::io::AsyncReadExt::read_exact(&mut s, &mut first)
                    .await
                    .unwrap();
                assert_eq!(&first, b"HTTP/1.1 200");
                let started = Instant::now();
                let (_, closed) = read_until_closed(&mut s, Duration::from_secs(10)).await;
                assert!(closed, "kept-alive connection still open after 10 s");
                started.elapsed()
            })
        })
        .collect();
    for t in tasks {
        let (name, (took, answer)) = t.await.unwrap();
        let body_shape = name.contains("body") || name.contains("content-length");
        if body_shape {
            // The head was complete: the handler answers the stalled body, then closes.
            assert!(answer.starts_with("HTTP/1.1 400"), "{name}: {answer}");
            if !name.starts_with("admin") {
                assert!(
                    answer.contains("CLIENT_BODY_IDLE_TIMEOUT_MS"),
                    "{name}: {answer}"
                );
            }
        } else {
            assert!(answer.is_empty(), "{name}: nothing answered, got {answer}");
        }
        assert_bounded(name, took, 0);
    }
    for k in keepalive {
        assert_bounded("idle keep-alive", k.await.unwrap(), 0);
    }
    assert_eq!(
        up.request_count(),
        0,
        "nothing partial reached the provider"
    );
    let timed_out = "cch_client_connections_timed_out_total";
    assert!(
        cch.metric(&format!("{timed_out}{{phase=\"header\"}}"))
            .await
            >= 3
    );
    assert!(
        cch.metric(&format!("{timed_out}{{phase=\"keepalive\"}}"))
            .await
            >= 1
    );
    assert!(cch.metric(&format!("{timed_out}{{phase=\"body\"}}")).await >= 3);
    // The normal path still works, on the same server.
    let r = cch
        .http
        .post(cch.url("/v1/messages"))
        .header("x-api-key", &key)
        .json(&json!({"model": "claude-sonnet-4-5", "max_tokens": 5, "messages": [{"role": "user", "content": "hi"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(up.request_count(), 1);
}

/// Raises this test process's own open-file limit (it holds thousands of sockets).
fn raise_own_nofile() -> u64 {
    claude_code_hub::adapters::http::listener::raise_open_file_limit().unwrap_or(0)
}

#[tokio::test]
async fn a_normal_request_succeeds_while_5000_idle_connections_are_held() {
    let limit = raise_own_nofile();
    assert!(
        limit >= 5_300,
        "open-file limit {limit} is too low for this test"
    );
    let up = FakeUpstream::start().await;
    let cch = spawn(BIN, &[("CLIENT_HEADER_TIMEOUT_MS", "120000")]).await;
    let (_, key) = cch.provider_and_key(&up.url()).await;
    let mut idle = Vec::with_capacity(5_000);
    for _ in 0..5_000 {
        idle.push(TcpStream::connect(&cch.addr).await.unwrap());
    }
    // All 5,000 are open on the server (accepted, none refused) ...
    let deadline = Instant::now() + Duration::from_secs(20);
    while cch.metric("cch_client_connections_open").await < 5_001 {
        assert!(
            Instant::now() < deadline,
            "the idle connections were not all accepted"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(cch.metric("cch_client_connections_refused_total").await, 0);
    // ... and a real request is served at once.
    let started = Instant::now();
    let r = cch
        .http
        .post(cch.url("/v1/messages"))
        .header("x-api-key", &key)
        .json(&json!({"model": "claude-sonnet-4-5", "max_tokens": 5, "messages": [{"role": "user", "content": "hi"}]}))
        .timeout(Duration::from_secs(10))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(up.request_count(), 1);
    drop(idle);
}

async fn assert_refused_at_once(cch: &CchProcess) {
    let mut s = TcpStream::connect(&cch.addr).await.unwrap();
    let _ = s
        .write_all(b"GET /health HTTP/1.1\r\nhost: cch\r\n\r\n")
        .await;
    let (answer, closed) = read_until_closed(&mut s, Duration::from_millis(1_500)).await;
    assert!(closed, "a connection beyond the cap was kept open");
    assert!(
        answer.is_empty(),
        "served beyond the cap: {}",
        String::from_utf8_lossy(&answer)
    );
}

#[tokio::test]
async fn connections_beyond_the_cap_are_refused_at_once_with_one_log_line() {
    let cch = spawn(
        BIN,
        &[
            ("MAX_CLIENT_CONNECTIONS", "4"),
            ("CLIENT_HEADER_TIMEOUT_MS", "60000"),
        ],
    )
    .await;
    let mut held = Vec::new();
    for _ in 0..4 {
        held.push(TcpStream::connect(&cch.addr).await.unwrap());
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    for _ in 0..20 {
        assert_refused_at_once(&cch).await;
    }
    drop(held.pop());
    tokio::time::sleep(Duration::from_millis(300)).await;
    // A place is free again: served normally, and the refusals are counted.
    assert_eq!(cch.metric("cch_client_connections_limit").await, 4);
    assert!(cch.metric("cch_client_connections_refused_total").await >= 20);
    let r = cch.http.get(cch.url("/health")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let logs = cch.stderr.lock().unwrap().clone();
    assert_eq!(
        logs.matches("client connection cap reached").count(),
        1,
        "one log line for the burst:\n{logs}"
    );
}
