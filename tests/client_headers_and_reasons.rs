//! What a provider gets from the client's headers, and what the client is told when the
//! upstream fails (issue 16, items 7 and 10): only the documented, bounded headers are
//! forwarded; a 431/413 caused by the client's own request is relayed once (no retry, no
//! failover, no breaker count) and an upstream HTML page is summarised, never embedded;
//! transport failures reach key holders as a stable short reason, the detail staying in the
//! request log's provider chain.

mod support;

use std::time::Duration;

use serde_json::{Value, json};
use support::app::{TestApp, spawn_app};
use support::fake_upstream::{FakeUpstream, Reply};

async fn key_for(t: &TestApp) -> String {
    let (_, u) = t.post("/api/v1/users", json!({"name": "u"})).await;
    let (_, k) = t
        .post(
            &format!("/api/v1/users/{}/keys", u["id"]),
            json!({"name": "k"}),
        )
        .await;
    k["key"].as_str().expect("key").to_string()
}

async fn provider(t: &TestApp, name: &str, base_url: &str, priority: i64) {
    let (s, p) = t
        .post(
            "/api/v1/providers",
            json!({"name": name, "provider_type": "claude", "base_url": base_url,
                   "api_key": format!("sk-{name}-secret"), "priority": priority, "max_retry_attempts": 2}),
        )
        .await;
    assert_eq!(s, 201, "{p}");
}

fn body() -> Value {
    json!({"model": "claude-sonnet-4", "max_tokens": 8, "messages": [{"role": "user", "content": "hi"}]})
}

#[tokio::test]
async fn only_documented_bounded_headers_reach_the_provider() {
    let up = FakeUpstream::start().await;
    let t = spawn_app(&[]).await;
    provider(&t, "a", &up.url(), 0).await;
    let key = key_for(&t).await;
    let r = t
        .http
        .post(t.url("/v1/messages"))
        .header("x-api-key", &key)
        .header("anthropic-beta", "claude-code-20250219")
        .header("x-stainless-retry-count", "0")
        .header(
            "x-claude-code-session-id",
            "0f0e0d0c-0000-4000-8000-000000000001",
        )
        .header("x-big", "b".repeat(64 * 1024))
        .header("x-internal-debug", "1")
        .header("anthropic-version", "2023-06-01")
        .json(&body())
        .send()
        .await
        .expect("request");
    assert_eq!(r.status(), 200);
    let got = &up.requests()[0];
    assert_eq!(got.header("anthropic-beta"), Some("claude-code-20250219"));
    assert_eq!(got.header("x-stainless-retry-count"), Some("0"));
    assert!(got.header("x-claude-code-session-id").is_some());
    assert_eq!(
        got.header("x-big"),
        None,
        "an arbitrary header is not forwarded"
    );
    assert_eq!(got.header("x-internal-debug"), None);
    assert_eq!(got.header("x-api-key"), Some("sk-a-secret"));
}

#[tokio::test]
async fn a_431_html_page_is_the_clients_error_relayed_once_and_summarised() {
    let bad = FakeUpstream::start().await;
    let good = FakeUpstream::start().await;
    let t = spawn_app(&[]).await;
    provider(&t, "bad", &bad.url(), 0).await;
    provider(&t, "good", &good.url(), 1).await;
    let key = key_for(&t).await;
    let page = "<!DOCTYPE html><html><head><title>431 Request Header Fields Too Large</title></head><body><center><h1>431</h1></center><hr>nginx</body></html>";
    bad.push(Reply::raw(431, "text/html", page));
    let r = t
        .http
        .post(t.url("/v1/messages"))
        .header("x-api-key", &key)
        .json(&body())
        .send()
        .await
        .expect("request");
    assert_eq!(r.status(), 431, "relayed as the client's error, not a 502");
    let text = r.text().await.unwrap_or_default();
    assert!(
        !text.contains("<html") && !text.contains("<center>"),
        "{text}"
    );
    assert!(
        text.contains("431 Request Header Fields Too Large"),
        "{text}"
    );
    assert_eq!(bad.requests().len(), 1, "no retry");
    assert!(good.requests().is_empty(), "no failover");
    let (_, breaker) = t.get("/api/v1/providers/1/breaker").await;
    assert_ne!(breaker["state"], "open");
    assert_eq!(
        breaker["failure_count"].as_i64().unwrap_or(0),
        0,
        "{breaker}"
    );
}

#[tokio::test]
async fn transport_failures_reach_the_client_as_a_stable_reason() {
    // Nothing listens on this port: every try is a connection error.
    let dead = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let dead_url = format!("http://{}", dead.local_addr().expect("addr"));
    drop(dead);
    let t = spawn_app(&[]).await;
    provider(&t, "dead", &dead_url, 0).await;
    let key = key_for(&t).await;
    let r = t
        .http
        .post(t.url("/v1/messages"))
        .header("x-api-key", &key)
        .json(&body())
        .send()
        .await
        .expect("request");
    assert_eq!(r.status(), 502);
    let v: Value = r.json().await.expect("json");
    let msg = v["error"]["message"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert_eq!(msg, "the upstream provider could not be reached", "{v}");
    // The admin still sees the transport detail in the request log.
    let mut detail = String::new();
    for _ in 0..50 {
        let (_, logs) = t.get("/api/v1/logs").await;
        if let Some(row) = logs["data"].as_array().and_then(|a| a.first()) {
            detail = row["provider_chain"].to_string();
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        detail.contains("error"),
        "the chain keeps the failure: {detail}"
    );
    assert!(detail != msg);
}
