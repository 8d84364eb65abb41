//! Per-provider request shaping (issue 12 item 8): custom headers reach the upstream (never
//! replacing its credentials, which cannot be named), and the client's `anthropic-beta` flags
//! are passed through, dropped or replaced, keeping the 1-hour cache TTL's beta when the body
//! asks for that TTL.

mod support;

use serde_json::{Value, json};
use support::app::{TestApp, spawn_app};
use support::fake_upstream::{FakeUpstream, Reply};

const CLIENT_BETAS: &str = "claude-code-20250219,interleaved-thinking-2025-05-14";

async fn setup(up: &FakeUpstream, shaping: Value) -> (TestApp, i64, String) {
    let t = spawn_app(&[]).await;
    let mut body = json!({"name": "relay", "provider_type": "claude", "base_url": up.url(),
                          "api_key": "sk-relay-key"});
    for (k, v) in shaping.as_object().unwrap() {
        body[k] = v.clone();
    }
    let (s, p) = t.post("/api/v1/providers", body).await;
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

async fn send(t: &TestApp, key: &str, ttl_1h: bool) {
    let mut system = json!({"type": "text", "text": "be brief"});
    if ttl_1h {
        system["cache_control"] = json!({"type": "ephemeral", "ttl": "1h"});
    }
    let r = t
        .http
        .post(t.url("/v1/messages"))
        .header("x-api-key", key)
        .header("anthropic-beta", CLIENT_BETAS)
        .header("x-relay-team", "from-client")
        .json(
            &json!({"model": "claude-sonnet-4-5", "max_tokens": 8, "system": [system],
                      "messages": [{"role": "user", "content": "hi"}]}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
}

#[tokio::test]
async fn custom_headers_are_added_and_beta_flags_dropped_except_the_cache_ttl() {
    let up = FakeUpstream::start().await;
    up.set_default(Reply::text("ok"));
    let (t, id, key) = setup(
        &up,
        json!({"custom_headers": {"X-Relay-Team": "blue", "x-trace": "t1"}, "anthropic_beta": "drop"}),
    )
    .await;
    send(&t, &key, false).await;
    let seen = up.last_request().unwrap();
    assert_eq!(
        seen.header("x-relay-team"),
        Some("blue"),
        "the provider's value wins"
    );
    assert_eq!(seen.header("x-trace"), Some("t1"));
    assert_eq!(seen.header("x-api-key"), Some("sk-relay-key"));
    assert_eq!(seen.header("anthropic-beta"), None);
    send(&t, &key, true).await;
    let seen = up.last_request().unwrap();
    assert_eq!(
        seen.header("anthropic-beta"),
        Some("extended-cache-ttl-2025-04-11")
    );
    // Views show the header names with masked values, and the policy.
    let (_, view) = t.get(&format!("/api/v1/providers/{id}")).await;
    assert_eq!(view["anthropic_beta"], "drop");
    assert!(view["custom_headers"]["x-relay-team"].is_string());
    assert_ne!(view["custom_headers"]["x-relay-team"], "blue");
    // Replace: the configured list instead of the client's.
    let (s, v) = t
        .patch(
            &format!("/api/v1/providers/{id}"),
            json!({"anthropic_beta": "replace", "anthropic_beta_list": ["context-1m-2025-08-07"]}),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    send(&t, &key, false).await;
    assert_eq!(
        up.last_request().unwrap().header("anthropic-beta"),
        Some("context-1m-2025-08-07")
    );
    // Passthrough: as the client sent them.
    t.patch(
        &format!("/api/v1/providers/{id}"),
        json!({"anthropic_beta": "passthrough"}),
    )
    .await;
    send(&t, &key, false).await;
    assert_eq!(
        up.last_request().unwrap().header("anthropic-beta"),
        Some(CLIENT_BETAS)
    );
}

#[tokio::test]
async fn credentials_and_framing_headers_cannot_be_set() {
    let up = FakeUpstream::start().await;
    let (t, id, _) = setup(&up, json!({})).await;
    for name in [
        "Authorization",
        "x-api-key",
        "x-goog-api-key",
        "host",
        "content-length",
        "anthropic-beta",
        "bad header",
    ] {
        let (s, e) = t
            .patch(
                &format!("/api/v1/providers/{id}"),
                json!({"custom_headers": {name: "v"}}),
            )
            .await;
        assert_eq!(s, 400, "{name}: {e}");
        assert!(e.to_string().contains("custom_headers"), "{e}");
    }
    let (s, _) = t
        .patch(
            &format!("/api/v1/providers/{id}"),
            json!({"anthropic_beta": "sometimes"}),
        )
        .await;
    assert_eq!(s, 400);
}
