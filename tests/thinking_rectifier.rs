//! The thinking-signature rectifier (issue 12 item 3), end to end: a provider that refuses the
//! thinking blocks another provider signed answers 400 "Invalid `signature` in `thinking`
//! block" (the message Anthropic sends, see protocols.md E20); cch strips the blocks and tries
//! the same provider once more, records both attempts in the chain and does not blame the
//! provider's breaker. The trigger list is the error rules of class
//! `rectify_thinking_signature`, which an admin can extend.

mod support;

use std::time::Duration;

use claude_code_hub::domain::request_log::{LogFilter, RequestLog};
use serde_json::{Value, json};
use support::app::{TestApp, spawn_app};
use support::fake_upstream::{FakeUpstream, Reply};

const SIGNATURE_ERROR: &str = "messages.1.content.0: Invalid `signature` in `thinking` block";

async fn setup(up: &FakeUpstream) -> (TestApp, i64, String) {
    let t = spawn_app(&[]).await;
    let (s, p) = t
        .post(
            "/api/v1/providers",
            json!({"name": "b", "provider_type": "claude", "base_url": up.url(),
                   "api_key": "sk-b", "max_retry_attempts": 1}),
        )
        .await;
    assert_eq!(s, 201, "{p}");
    let (_, u) = t.post("/api/v1/users", json!({"name": "u"})).await;
    let (_, k) = t
        .post(
            &format!("/api/v1/users/{}/keys", u["id"]),
            json!({"name": "k"}),
        )
        .await;
    (
        t,
        p["id"].as_i64().unwrap(),
        k["key"].as_str().unwrap().to_string(),
    )
}

fn conversation() -> Value {
    json!({"model": "claude-sonnet-4-5", "max_tokens": 2048,
           "thinking": {"type": "enabled", "budget_tokens": 1024},
           "messages": [
               {"role": "user", "content": "What is 2 + 2?"},
               {"role": "assistant", "content": [
                   {"type": "thinking", "thinking": "Simple.", "signature": "sig-from-provider-a"},
                   {"type": "text", "text": "4"}]},
               {"role": "user", "content": "And times 3?"}]})
}

async fn logs(t: &TestApp, n: usize) -> Vec<RequestLog> {
    for _ in 0..100 {
        let rows = t
            .app
            .ctx
            .log_store
            .list_logs(&LogFilter {
                limit: 20,
                ..Default::default()
            })
            .await
            .unwrap();
        if rows.len() >= n {
            return rows;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("fewer than {n} log rows appeared");
}

fn has_thinking(body: &Value) -> bool {
    body["messages"].as_array().unwrap().iter().any(|m| {
        m["content"]
            .as_array()
            .is_some_and(|c| c.iter().any(|b| b["type"] == "thinking"))
    })
}

async fn send(t: &TestApp, key: &str, body: &Value) -> (u16, Value) {
    let r = t
        .http
        .post(t.url("/v1/messages"))
        .header("x-api-key", key)
        .json(body)
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn a_refused_signature_is_stripped_and_retried_once_on_the_same_provider() {
    let up = FakeUpstream::start().await;
    let (t, pid, key) = setup(&up).await;
    up.push(Reply::error(400, "invalid_request_error", SIGNATURE_ERROR));
    up.push(Reply::message("12"));

    let (status, body) = send(&t, &key, &conversation()).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["content"][0]["text"], "12");

    let reqs = up.requests();
    assert_eq!(reqs.len(), 2);
    let first = reqs[0].json.clone().unwrap();
    let second = reqs[1].json.clone().unwrap();
    assert!(
        has_thinking(&first),
        "the first try is the client's request"
    );
    assert!(
        !has_thinking(&second),
        "the retry has no thinking blocks: {second}"
    );
    assert_eq!(
        second["messages"][1]["content"],
        json!([{"type": "text", "text": "4"}])
    );
    assert_eq!(second["messages"].as_array().unwrap().len(), 3);

    let row = logs(&t, 1).await.remove(0);
    assert_eq!(row.status_code, 200);
    let chain = &row.provider_chain;
    assert_eq!(chain.as_array().unwrap().len(), 2, "{chain}");
    assert_eq!(chain[0]["provider_id"], pid);
    assert_eq!(chain[0]["status"], 400);
    assert_eq!(chain[0]["error_class"], "rectify_thinking_signature");
    assert_eq!(chain[0]["detection"], "thinking_signature");
    assert_eq!(chain[1]["provider_id"], pid);
    assert_eq!(chain[1]["reason"], "rectified_retry");
    assert_eq!(chain[1]["outcome"], "success");
    let (_, b) = t.get(&format!("/api/v1/providers/{pid}/breaker")).await;
    assert_eq!(b["failure_count"], 0, "{b}");
    t.app.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_second_refusal_or_nothing_to_strip_goes_to_the_client() {
    let up = FakeUpstream::start().await;
    let (t, _, key) = setup(&up).await;
    // Refused again after rectifying: one retry only, then the client's 400.
    up.push(Reply::error(400, "invalid_request_error", SIGNATURE_ERROR));
    up.push(Reply::error(400, "invalid_request_error", SIGNATURE_ERROR));
    let (status, body) = send(&t, &key, &conversation()).await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(up.request_count(), 2);
    // Nothing to strip: not retried at all.
    up.push(Reply::error(400, "invalid_request_error", SIGNATURE_ERROR));
    let plain = json!({"model": "m", "max_tokens": 10,
                       "messages": [{"role": "user", "content": "hi"}]});
    let (status, _) = send(&t, &key, &plain).await;
    assert_eq!(status, 400);
    assert_eq!(up.request_count(), 3);
    t.app.shutdown().await.unwrap();
}

#[tokio::test]
async fn admins_extend_the_trigger_list_with_an_error_rule() {
    let up = FakeUpstream::start().await;
    let (t, _, key) = setup(&up).await;
    let relay_wording = "thinking signature verification failed for this channel";
    // Without a rule the relay's wording is an ordinary provider error: the one provider
    // failed, the client gets an error and the request was not rectified.
    up.push(Reply::error(400, "invalid_request_error", relay_wording));
    assert_ne!(send(&t, &key, &conversation()).await.0, 200);
    assert_eq!(up.request_count(), 1);

    let (s, r) = t
        .post(
            "/api/v1/error-rules",
            json!({"pattern": "signature verification failed", "match_kind": "contains",
                   "status": 400, "class": "rectify_thinking_signature", "priority": 10}),
        )
        .await;
    assert_eq!(s, 201, "{r}");
    up.push(Reply::error(400, "invalid_request_error", relay_wording));
    up.push(Reply::message("12"));
    let (status, body) = send(&t, &key, &conversation()).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(up.request_count(), 3);
    assert!(!has_thinking(&up.last_request().unwrap().json.unwrap()));
    t.app.shutdown().await.unwrap();
}

#[tokio::test]
async fn the_anthropic_sdk_sees_one_ordinary_answer() {
    let py = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(".venv/bin/python");
    if !py.exists() {
        eprintln!("SKIP the_anthropic_sdk_sees_one_ordinary_answer: no .venv (run .ci/run)");
        return;
    }
    let up = FakeUpstream::start().await;
    let (t, _, key) = setup(&up).await;
    up.push(Reply::error(400, "invalid_request_error", SIGNATURE_ERROR));
    up.push(Reply::message("12"));
    up.push(Reply::error(400, "invalid_request_error", SIGNATURE_ERROR));
    up.push(Reply::stream("12"));
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/python/anthropic_rectifier.py");
    let out = tokio::process::Command::new(py)
        .arg(script)
        .env("CCH_BASE_URL", &t.base)
        .env("CCH_KEY", &key)
        .output()
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "stdout: {stdout}\nstderr: {stderr}");
    assert!(stdout.contains("rectifier: ok"));
    let reqs = up.requests();
    assert_eq!(reqs.len(), 4);
    assert!(!has_thinking(reqs[3].json.as_ref().unwrap()));
    t.app.shutdown().await.unwrap();
}
