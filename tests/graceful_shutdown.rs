//! Issue 15, item 1, against the real binary: on SIGTERM `/ready` turns 503 at once while new
//! connections are still taken for `SHUTDOWN_READY_DELAY_MS`; open streams finish within the
//! drain time and are logged; a request still waiting for its upstream when the drain time ends
//! gets a 503 in its client's format and a log row; a second signal ends the process at once.

mod support;

use std::time::{Duration, Instant};

use claude_code_hub::adapters::sqlite::SqliteStore;
use claude_code_hub::domain::request_log::{LogFilter, RequestLog};
use claude_code_hub::ports::store::RequestLogStore;
use serde_json::json;
use support::bin::{CchProcess, spawn};
use support::fake_upstream::{FakeUpstream, Reply};

const BIN: &str = env!("CARGO_BIN_EXE_cch");

fn claude_stream() -> serde_json::Value {
    json!({"model": "claude-sonnet-4-5", "max_tokens": 5, "stream": true,
           "messages": [{"role": "user", "content": "hi"}]})
}

async fn rows(cch: &CchProcess) -> Vec<RequestLog> {
    let db = cch.dir.path().join("data/cch.db");
    let store = SqliteStore::connect(&format!("sqlite://{}", db.display()))
        .await
        .unwrap();
    store
        .list_logs(&LogFilter {
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap()
}

async fn exit_within(cch: &mut CchProcess, limit: Duration) -> std::process::ExitStatus {
    tokio::time::timeout(limit, cch.child.wait())
        .await
        .expect("cch exits in time")
        .unwrap()
}

#[tokio::test]
async fn not_ready_at_once_then_open_streams_finish_and_the_process_exits_zero() {
    let up = FakeUpstream::start().await;
    // Three events, then a 1.5 s pause, then the rest: the stream is open when SIGTERM comes
    // and ends well inside the drain time.
    up.set_default(
        Reply::stream("a long answer").stall_after_events(4, Duration::from_millis(1500)),
    );
    let mut cch = spawn(BIN, &[("SHUTDOWN_READY_DELAY_MS", "1000")]).await;
    let (_, key) = cch.provider_and_key(&up.url()).await;
    assert_eq!(
        cch.http
            .get(cch.url("/ready"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    let mut stream = cch
        .http
        .post(cch.url("/v1/messages"))
        .header("x-api-key", &key)
        .json(&claude_stream())
        .send()
        .await
        .unwrap();
    assert_eq!(stream.status(), 200);
    let first = stream.chunk().await.unwrap().expect("a first event");
    let mut text = String::from_utf8_lossy(&first).to_string();

    cch.terminate();
    let signalled = Instant::now();
    // A fresh client (new connection): the listener still accepts during the ready delay.
    let fresh = reqwest::Client::new();
    let ready = loop {
        let r = fresh.get(cch.url("/ready")).send().await.unwrap();
        if r.status() == 503 || signalled.elapsed() > Duration::from_millis(500) {
            break r;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    assert_eq!(ready.status(), 503);
    let body: serde_json::Value = ready.json().await.unwrap();
    assert_eq!(body["status"], "draining");

    let drained = tokio::spawn(async move {
        let mut clean = true;
        loop {
            match stream.chunk().await {
                Ok(Some(c)) => text.push_str(&String::from_utf8_lossy(&c)),
                Ok(None) => break,
                Err(_) => {
                    clean = false;
                    break;
                }
            }
        }
        (text, clean)
    });
    // After the delay, new connections are refused.
    tokio::time::sleep(Duration::from_millis(1300)).await;
    let late = reqwest::Client::new()
        .get(cch.url("/health"))
        .timeout(Duration::from_secs(2))
        .send()
        .await;
    assert!(
        late.is_err(),
        "the listener is closed after the ready delay: {late:?}"
    );

    let (text, clean) = tokio::time::timeout(Duration::from_secs(10), drained)
        .await
        .unwrap()
        .unwrap();
    assert!(clean, "{text}");
    assert!(
        text.contains("message_stop"),
        "the stream finished normally: {text}"
    );
    assert!(!text.contains("shutting down"), "{text}");
    let status = exit_within(&mut cch, Duration::from_secs(10)).await;
    assert!(status.success(), "{status:?}");
    let rows = rows(&cch).await;
    assert_eq!(rows.len(), 1, "the row was flushed before exit: {rows:?}");
    assert_eq!(rows[0].status_code, 200);
}

#[tokio::test]
async fn a_request_still_waiting_at_the_end_of_the_drain_gets_a_503_in_its_format_and_a_row() {
    let up = FakeUpstream::start().await;
    up.set_default(Reply::message("late").delay_first_byte(Duration::from_secs(60)));
    let mut cch = spawn(BIN, &[("SHUTDOWN_DRAIN_MS", "500")]).await;
    let (_, key) = cch.provider_and_key(&up.url()).await;
    let http = cch.http.clone();
    let url = cch.url("/v1/chat/completions");
    let waiting = tokio::spawn(async move {
        http.post(url)
            .bearer_auth(&key)
            .json(&json!({"model": "claude-sonnet-4-5",
                          "messages": [{"role": "user", "content": "hi"}]}))
            .send()
            .await
    });
    // Let the request reach the upstream before the signal.
    let deadline = Instant::now() + Duration::from_secs(5);
    while up.requests().is_empty() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(up.requests().len(), 1);
    cch.terminate();
    let resp = tokio::time::timeout(Duration::from_secs(10), waiting)
        .await
        .expect("answered at the cut, not after the upstream")
        .unwrap()
        .unwrap();
    assert_eq!(resp.status(), 503);
    assert_eq!(resp.headers()["retry-after"], "1");
    let body: serde_json::Value = resp.json().await.unwrap();
    // OpenAI's error shape: {"error": {"message", "type", ...}}, no Claude "type": "error".
    assert_eq!(
        body["error"]["message"], "the server is shutting down; retry",
        "{body}"
    );
    assert!(body.get("type").is_none(), "{body}");
    let status = exit_within(&mut cch, Duration::from_secs(10)).await;
    assert!(status.success(), "{status:?}");
    let rows = rows(&cch).await;
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(rows[0].status_code, 503);
    let err = rows[0].error_message.clone().unwrap_or_default();
    assert!(err.contains("shutting_down"), "{err}");
}

#[tokio::test]
async fn a_second_signal_ends_the_process_at_once() {
    let up = FakeUpstream::start().await;
    up.set_default(Reply::stream("never ends").stall_after_events(4, Duration::from_secs(120)));
    let mut cch = spawn(BIN, &[("SHUTDOWN_DRAIN_MS", "60000")]).await;
    let (_, key) = cch.provider_and_key(&up.url()).await;
    let mut stream = cch
        .http
        .post(cch.url("/v1/messages"))
        .header("x-api-key", &key)
        .json(&claude_stream())
        .send()
        .await
        .unwrap();
    assert_eq!(stream.status(), 200);
    stream.chunk().await.unwrap().expect("a first event");
    cch.terminate();
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        cch.child.try_wait().unwrap().is_none(),
        "still draining after the first signal"
    );
    let second = Instant::now();
    cch.terminate();
    let status = exit_within(&mut cch, Duration::from_secs(5)).await;
    assert!(second.elapsed() < Duration::from_secs(3));
    assert!(!status.success(), "{status:?}");
    let logs = cch.stderr.lock().unwrap().clone();
    assert!(logs.contains("second shutdown signal"), "{logs}");
}

/// Opens `n` Claude streams that each pause `pause` after three events; returns their readers
/// once every stream has shown its first event.
async fn open_streams(
    cch: &CchProcess,
    key: &str,
    n: usize,
) -> Vec<tokio::task::JoinHandle<(String, bool)>> {
    let mut readers = Vec::new();
    for _ in 0..n {
        let http = cch.http.clone();
        let url = cch.url("/v1/messages");
        let key = key.to_string();
        let (tx, rx) = tokio::sync::oneshot::channel();
        readers.push((
            tokio::spawn(async move {
                let mut r = http
                    .post(url)
                    .header("x-api-key", key)
                    .json(&claude_stream())
                    .send()
                    .await
                    .unwrap();
                let mut text = String::new();
                let mut tx = Some(tx);
                loop {
                    match r.chunk().await {
                        Ok(Some(c)) => {
                            text.push_str(&String::from_utf8_lossy(&c));
                            if let Some(tx) = tx.take() {
                                let _ = tx.send(());
                            }
                        }
                        Ok(None) => return (text, true),
                        Err(_) => return (text, false),
                    }
                }
            }),
            rx,
        ));
    }
    let mut out = Vec::new();
    for (reader, first) in readers {
        tokio::time::timeout(Duration::from_secs(30), first)
            .await
            .expect("every stream starts")
            .expect("a first event");
        out.push(reader);
    }
    out
}

/// Issue 15, item 2 (the SIGTERM part of the fault suite, small enough for CI): 100 open
/// streams at SIGTERM all finish normally within the drain time; with a drain shorter than the
/// streams, all 100 end with an error event and a proper end of body. Every one is logged.
#[tokio::test]
async fn sigterm_with_100_open_streams_ends_every_one_cleanly() {
    for (drain_ms, finishes) in [("30000", true), ("300", false)] {
        let up = FakeUpstream::start().await;
        // Four events: the fourth is the first text, which releases the content gate, so the
        // streams are open (past the gate) when SIGTERM comes.
        up.set_default(
            Reply::stream("a long answer").stall_after_events(4, Duration::from_millis(2500)),
        );
        let mut cch = spawn(BIN, &[("SHUTDOWN_DRAIN_MS", drain_ms)]).await;
        let (_, key) = cch.provider_and_key(&up.url()).await;
        let readers = open_streams(&cch, &key, 100).await;
        cch.terminate();
        let (mut clean, mut complete, mut cut) = (0, 0, 0);
        for r in readers {
            let (text, ended_properly) = tokio::time::timeout(Duration::from_secs(30), r)
                .await
                .unwrap()
                .unwrap();
            clean += usize::from(ended_properly);
            complete += usize::from(text.contains("message_stop"));
            cut += usize::from(text.contains("the server is shutting down; retry"));
        }
        eprintln!(
            "SHUTDOWN_DRAIN_MS={drain_ms}: {clean}/100 bodies ended properly, {complete} finished, {cut} ended with the shutdown error event"
        );
        assert_eq!(clean, 100);
        if finishes {
            assert_eq!((complete, cut), (100, 0));
        } else {
            assert_eq!((complete, cut), (0, 100));
        }
        let status = exit_within(&mut cch, Duration::from_secs(30)).await;
        assert!(status.success(), "{status:?}");
        let db = cch.dir.path().join("data/cch.db");
        let store = SqliteStore::connect(&format!("sqlite://{}", db.display()))
            .await
            .unwrap();
        let logged = store
            .list_logs(&LogFilter {
                limit: 200,
                ..Default::default()
            })
            .await
            .unwrap();
        assert_eq!(logged.len(), 100, "every stream has its row");
        let want = if finishes { 200 } else { 503 };
        assert!(logged.iter().all(|r| r.status_code == want));
    }
}
