//! Bodies the README promises to reject never reach a provider (issue 16, item 8): raw invalid
//! UTF-8 inside a JSON string, nesting 100,000 levels deep inside `messages[].content`, and a
//! 100 KB model name all get a 400 in the client's format, on every client route.

mod support;

use serde_json::{Value, json};
use support::app::{TestApp, spawn_app};
use support::fake_upstream::FakeUpstream;

async fn setup() -> (TestApp, FakeUpstream, String) {
    let up = FakeUpstream::start().await;
    let t = spawn_app(&[]).await;
    let (s, _) = t
        .post(
            "/api/v1/providers",
            json!({"name": "a", "provider_type": "claude", "base_url": up.url(), "api_key": "sk-body-checks",
                   "extra_client_formats": ["openai", "response", "gemini"]}),
        )
        .await;
    assert_eq!(s, 201);
    let (_, u) = t.post("/api/v1/users", json!({"name": "u"})).await;
    let (_, k) = t
        .post(
            &format!("/api/v1/users/{}/keys", u["id"]),
            json!({"name": "k"}),
        )
        .await;
    (t, up, k["key"].as_str().expect("key").to_string())
}

async fn post_raw(t: &TestApp, key: &str, path: &str, body: Vec<u8>) -> (u16, Value) {
    let r = t
        .http
        .post(t.url(path))
        .header("x-api-key", key)
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .expect("request");
    let s = r.status().as_u16();
    (s, r.json().await.unwrap_or(Value::Null))
}

/// (route, body prefix up to the content, body suffix after it, model field)
fn shapes() -> Vec<(&'static str, String, String)> {
    vec![
        (
            "/v1/messages",
            r#"{"model":"MODEL","max_tokens":8,"messages":[{"role":"user","content":"#.into(),
            "}]}".into(),
        ),
        (
            "/v1/chat/completions",
            r#"{"model":"MODEL","messages":[{"role":"user","content":"#.into(),
            "}]}".into(),
        ),
        (
            "/v1/responses",
            r#"{"model":"MODEL","input":[{"role":"user","content":"#.into(),
            "}]}".into(),
        ),
        (
            "/v1beta/models/gemini-2.5-pro:generateContent",
            r#"{"contents":[{"role":"user","parts":[{"text":"hi"}],"x":"#.into(),
            "}]}".into(),
        ),
    ]
}

fn message_of(v: &Value) -> String {
    v["error"]["message"]
        .as_str()
        .map(str::to_string)
        .unwrap_or_else(|| v.to_string())
}

#[tokio::test]
async fn invalid_utf8_and_deep_nesting_get_400_and_are_not_forwarded() {
    let (t, up, key) = setup().await;
    for (path, head, tail) in shapes() {
        let head = head.replace("MODEL", "claude-sonnet-4");
        let mut bad_utf8 = head.clone().into_bytes();
        bad_utf8.extend_from_slice(b"\"caf\xff\xfe\"");
        bad_utf8.extend_from_slice(tail.as_bytes());
        let (s, v) = post_raw(&t, &key, path, bad_utf8).await;
        assert_eq!(s, 400, "{path}: {v}");
        assert!(message_of(&v).contains("UTF-8"), "{path}: {v}");

        let deep = format!("{head}{}{}{tail}", "[".repeat(100_000), "]".repeat(100_000));
        let (s, v) = post_raw(&t, &key, path, deep.into_bytes()).await;
        assert_eq!(s, 400, "{path}: {v}");
        assert!(message_of(&v).contains("nested deeper"), "{path}: {v}");
    }
    assert!(up.requests().is_empty(), "nothing reached the provider");
}

#[tokio::test]
async fn a_model_name_over_256_characters_gets_400_and_is_not_forwarded() {
    let (t, up, key) = setup().await;
    let long = "m".repeat(100_000);
    for (path, head, tail) in shapes().into_iter().take(3) {
        let body = format!("{}\"hi\"{tail}", head.replace("MODEL", &long));
        let (s, v) = post_raw(&t, &key, path, body.into_bytes()).await;
        assert_eq!(s, 400, "{path}: {v}");
        assert!(message_of(&v).contains("256"), "{path}: {v}");
    }
    let path = format!("/v1beta/models/{}:generateContent", "g".repeat(1_000));
    let (s, v) = post_raw(
        &t,
        &key,
        &path,
        br#"{"contents":[{"role":"user","parts":[{"text":"hi"}]}]}"#.to_vec(),
    )
    .await;
    assert_eq!(s, 400, "gemini: {v}");
    assert!(up.requests().is_empty(), "nothing reached the provider");
    // A normal request still passes.
    let (s, v) = post_raw(
        &t,
        &key,
        "/v1/messages",
        br#"{"model":"claude-sonnet-4","max_tokens":8,"messages":[{"role":"user","content":"hi"}]}"#.to_vec(),
    )
    .await;
    assert_eq!(s, 200, "{v}");
}
