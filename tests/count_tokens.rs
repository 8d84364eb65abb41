//! `count_tokens` that never lies (issue 12 item 4, the upstream part): Claude Code's
//! `/v1/messages/count_tokens` is answered by the provider's own count wherever one exists: a
//! Claude provider's `count_tokens`, a Gemini provider's `:countTokens` (with the converted
//! request wrapped as `generateContentRequest`, so system instruction and tools count); only
//! providers without a count endpoint get the local estimate. `x-cch-token-count` says which.

mod support;

use serde_json::{Value, json};
use support::app::{TestApp, spawn_app};
use support::fake_upstream::FakeUpstream;

async fn setup(up: &FakeUpstream, provider_type: &str) -> (TestApp, String) {
    let t = spawn_app(&[]).await;
    let (s, p) = t
        .post(
            "/api/v1/providers",
            json!({"name": "p", "provider_type": provider_type, "base_url": up.url(),
                   "api_key": "sk-up", "extra_client_formats": ["claude"]}),
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
    (t, k["key"].as_str().unwrap().to_string())
}

fn request() -> Value {
    json!({"model": "claude-sonnet-4-5", "system": "You are Claude Code.",
           "tools": [{"name": "Bash", "description": "run a command",
                      "input_schema": {"type": "object", "properties": {"command": {"type": "string"}}}}],
           "messages": [{"role": "user", "content": "count me"}]})
}

async fn count(t: &TestApp, key: &str) -> (u16, Option<String>, Value) {
    let r = t
        .http
        .post(t.url("/v1/messages/count_tokens"))
        .header("x-api-key", key)
        .header("anthropic-version", "2023-06-01")
        .json(&request())
        .send()
        .await
        .unwrap();
    let s = r.status().as_u16();
    let how = r
        .headers()
        .get("x-cch-token-count")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    (s, how, r.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn a_gemini_provider_counts_with_its_own_count_tokens() {
    let up = FakeUpstream::start().await;
    up.set_count_tokens(Some(1234));
    let (t, key) = setup(&up, "gemini").await;
    let (s, how, a) = count(&t, &key).await;
    assert_eq!(s, 200, "{a}");
    assert_eq!(a, json!({"input_tokens": 1234}));
    assert_eq!(how.as_deref(), Some("upstream"));
    let seen = up.last_request().unwrap();
    assert_eq!(
        seen.path_only(),
        "/v1beta/models/claude-sonnet-4-5:countTokens"
    );
    let body = seen.json.unwrap();
    let req = &body["generateContentRequest"];
    assert_eq!(req["model"], "models/claude-sonnet-4-5");
    assert!(req["systemInstruction"].is_object(), "{body}");
    assert!(req["tools"].is_array(), "{body}");
    assert!(req["contents"].is_array(), "{body}");
}

#[tokio::test]
async fn a_claude_provider_counts_and_openai_providers_use_the_tokenizer() {
    let up = FakeUpstream::start().await;
    up.set_count_tokens(Some(77));
    let (t, key) = setup(&up, "claude").await;
    let (s, how, a) = count(&t, &key).await;
    assert_eq!((s, how.as_deref()), (200, Some("upstream")), "{a}");
    assert_eq!(a["input_tokens"], 77);

    // OpenAI-compatible and Codex providers: the converted request through the tokenizer.
    for provider_type in ["openai-compatible", "codex"] {
        let up2 = FakeUpstream::start().await;
        let (t2, key2) = setup(&up2, provider_type).await;
        let (s, how, a) = count(&t2, &key2).await;
        assert_eq!(
            (s, how.as_deref()),
            (200, Some("tokenizer")),
            "{provider_type}: {a}"
        );
        let n = a["input_tokens"].as_u64().unwrap();
        assert!((30..200).contains(&n), "{provider_type}: {n}");
        assert_eq!(up2.request_count(), 0, "no upstream call for a local count");
    }
}
