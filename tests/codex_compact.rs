//! Codex remote compaction (issue 12 item 5): `POST /v1/responses/compact` (what Codex CLI sends
//! when `remote_compaction` is on: `{model, input, instructions}`, answered with `{"output":
//! [items]}`; see codex-rs/codex-api `CompactClient`) is served like `/v1/responses` (same
//! auth, limits, session and log) but only by providers speaking Responses natively; with none
//! it gets OpenAI's own 404 for an unknown route, so the CLI compacts locally.

mod support;

use std::time::Duration;

use claude_code_hub::domain::request_log::LogFilter;
use serde_json::{Value, json};
use support::app::{TestApp, spawn_app};
use support::fake_upstream::{FakeUpstream, Reply};

fn compact_body() -> Value {
    json!({"model": "gpt-5-codex", "instructions": "Summarize the conversation.",
           "input": [{"type": "message", "role": "user",
                      "content": [{"type": "input_text", "text": "fix the bug"}]}]})
}

async fn user_key(t: &TestApp) -> String {
    let (_, u) = t.post("/api/v1/users", json!({"name": "u"})).await;
    let (_, k) = t
        .post(
            &format!("/api/v1/users/{}/keys", u["id"]),
            json!({"name": "k"}),
        )
        .await;
    k["key"].as_str().unwrap().to_string()
}

async fn compact(t: &TestApp, key: &str) -> (u16, Value) {
    let r = t
        .http
        .post(t.url("/v1/responses/compact"))
        .bearer_auth(key)
        .header("session_id", "codex-session-1")
        .json(&compact_body())
        .send()
        .await
        .unwrap();
    let s = r.status().as_u16();
    (s, r.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn compaction_goes_to_a_responses_provider_only_and_is_logged() {
    let codex = FakeUpstream::start().await;
    let claude = FakeUpstream::start().await;
    let answer = json!({"output": [{"type": "compaction", "encrypted_content": "gAAAA-opaque"}]});
    codex.set_default(Reply::raw(200, "application/json", answer.to_string()));
    claude.set_default(Reply::text("converted"));
    let t = spawn_app(&[]).await;
    // The converting Claude provider is preferred (priority 0) for ordinary Responses traffic.
    let (s, _) = t
        .post(
            "/api/v1/providers",
            json!({"name": "claude", "provider_type": "claude", "base_url": claude.url(),
                   "api_key": "sk-c", "priority": 0, "extra_client_formats": ["response"]}),
        )
        .await;
    assert_eq!(s, 201);
    let (s, _) = t
        .post(
            "/api/v1/providers",
            json!({"name": "codex", "provider_type": "codex", "base_url": codex.url(),
                   "api_key": "sk-x", "priority": 5}),
        )
        .await;
    assert_eq!(s, 201);
    let key = user_key(&t).await;
    let (s, a) = compact(&t, &key).await;
    assert_eq!(s, 200, "{a}");
    assert_eq!(a, answer, "the opaque answer passes through unchanged");
    assert_eq!(
        claude.request_count(),
        0,
        "a converting provider never gets it"
    );
    let seen = codex.last_request().unwrap();
    assert_eq!(seen.path_only(), "/v1/responses/compact");
    assert_eq!(seen.json.as_ref(), Some(&compact_body()));
    assert_eq!(seen.header("authorization"), Some("Bearer sk-x"));
    let mut rows = Vec::new();
    for _ in 0..100 {
        rows = t
            .app
            .ctx
            .log_store
            .list_logs(&LogFilter {
                limit: 5,
                ..Default::default()
            })
            .await
            .unwrap();
        if !rows.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].endpoint, "/v1/responses/compact");
    assert_eq!(rows[0].status_code, 200);
}

#[tokio::test]
async fn without_a_responses_provider_it_is_openais_unknown_route() {
    let claude = FakeUpstream::start().await;
    claude.set_default(Reply::text("converted"));
    let t = spawn_app(&[]).await;
    t.post(
        "/api/v1/providers",
        json!({"name": "claude", "provider_type": "claude", "base_url": claude.url(),
               "api_key": "sk-c", "extra_client_formats": ["response"]}),
    )
    .await;
    let key = user_key(&t).await;
    let (s, a) = compact(&t, &key).await;
    assert_eq!(s, 404, "{a}");
    assert_eq!(
        a,
        json!({"error": {"message": "Invalid URL (POST /v1/responses/compact)",
                         "type": "invalid_request_error", "param": null, "code": null}})
    );
    assert_eq!(claude.request_count(), 0);
    // Ordinary Responses traffic still converts to Claude.
    let r = t
        .http
        .post(t.url("/v1/responses"))
        .bearer_auth(&key)
        .json(&json!({"model": "gpt-5-codex", "input": "hi"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    // Without a key it is refused like every client route.
    let r = t
        .http
        .post(t.url("/v1/responses/compact"))
        .json(&compact_body())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
}
