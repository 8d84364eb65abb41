//! Issue 16, item 5, against the real binary: a stream still open when shutdown's drain time
//! ends gets an `error` event in the client's format and a proper end of body, and its log row
//! records a server-side cut (503), not a client abort (499).

mod support;

use std::time::Duration;

use claude_code_hub::adapters::sqlite::SqliteStore;
use claude_code_hub::domain::request_log::LogFilter;
use claude_code_hub::ports::store::RequestLogStore;
use futures_util::StreamExt;
use serde_json::json;
use support::bin::spawn;
use support::fake_upstream::{FakeUpstream, Reply};

const BIN: &str = env!("CARGO_BIN_EXE_cch");

/// Reads a streamed response to its end; returns the text and whether the body ended cleanly
/// (a chunked terminator, not a cut connection).
async fn read_stream(
    r: reqwest::Response,
    first_seen: tokio::sync::oneshot::Sender<()>,
) -> (String, bool) {
    let mut text = String::new();
    let mut body = r.bytes_stream();
    let mut first_seen = Some(first_seen);
    while let Some(chunk) = body.next().await {
        match chunk {
            Ok(b) => {
                text.push_str(&String::from_utf8_lossy(&b));
                if let Some(tx) = first_seen.take() {
                    let _ = tx.send(());
                }
            }
            Err(_) => return (text, false),
        }
    }
    (text, true)
}

#[tokio::test]
async fn shutdown_ends_open_streams_with_an_error_event_and_logs_a_server_cut() {
    let up = FakeUpstream::start().await;
    // Four events (the fourth is the first text, which releases the content gate), then
    // silence for a minute: the stream is open when shutdown comes.
    up.set_default(Reply::stream("a long answer").stall_after_events(4, Duration::from_secs(60)));
    let mut cch = spawn(BIN, &[("SHUTDOWN_DRAIN_TIMEOUT_MS", "1000")]).await;
    let (_, key) = cch.provider_and_key(&up.url()).await;
    let claude = cch
        .http
        .post(cch.url("/v1/messages"))
        .header("x-api-key", &key)
        .json(
            &json!({"model": "claude-sonnet-4-5", "max_tokens": 5, "stream": true,
                      "messages": [{"role": "user", "content": "hi"}]}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(claude.status(), 200);
    let openai = cch
        .http
        .post(cch.url("/v1/chat/completions"))
        .bearer_auth(&key)
        .json(&json!({"model": "claude-sonnet-4-5", "stream": true,
                      "messages": [{"role": "user", "content": "hi"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(openai.status(), 200, "{:?}", openai.text().await);
    let (tx1, rx1) = tokio::sync::oneshot::channel();
    let (tx2, rx2) = tokio::sync::oneshot::channel();
    let claude = tokio::spawn(read_stream(claude, tx1));
    let openai = tokio::spawn(read_stream(openai, tx2));
    rx1.await.unwrap();
    rx2.await.unwrap();

    cch.terminate();
    let (claude_text, claude_clean) = tokio::time::timeout(Duration::from_secs(10), claude)
        .await
        .unwrap()
        .unwrap();
    let (openai_text, openai_clean) = tokio::time::timeout(Duration::from_secs(10), openai)
        .await
        .unwrap()
        .unwrap();
    assert!(
        claude_clean,
        "the Claude body ended properly: {claude_text}"
    );
    assert!(
        openai_clean,
        "the OpenAI body ended properly: {openai_text}"
    );
    let tail = claude_text
        .rsplit("\n\n")
        .find(|e| !e.trim().is_empty())
        .unwrap();
    assert!(
        tail.starts_with("event: error"),
        "Claude error event last: {claude_text}"
    );
    assert!(
        tail.contains("the server is shutting down; retry"),
        "{tail}"
    );
    assert!(
        openai_text.contains("the server is shutting down; retry"),
        "OpenAI error chunk: {openai_text}"
    );
    assert!(
        !openai_text.contains("event: error"),
        "OpenAI shape, not Claude's: {openai_text}"
    );
    let status = tokio::time::timeout(Duration::from_secs(10), cch.child.wait())
        .await
        .expect("cch exits after the cut")
        .unwrap();
    assert!(status.success(), "{status:?}");

    // The rows were flushed before exit: a server-side cut, not a client abort.
    let db = cch.dir.path().join("data/cch.db");
    let store = SqliteStore::connect(&format!("sqlite://{}", db.display()))
        .await
        .unwrap();
    let rows = store
        .list_logs(&LogFilter {
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(rows.len(), 2, "{rows:?}");
    for row in rows {
        assert_eq!(row.status_code, 503, "{row:?}");
        let err = row.error_message.unwrap_or_default();
        assert!(err.contains("server shutdown"), "{err}");
        assert!(!err.contains("client closed"), "{err}");
    }
    let logs = cch.stderr.lock().unwrap().clone();
    assert!(logs.contains("drain time over"), "{logs}");
}
