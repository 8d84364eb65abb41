//! The client's cch key never reaches a provider, however the query spells it (issue 16,
//! item 1): against the real binary, every client route, with the key only in the query as
//! `%6Bey=`, `KEY=…&key=…` and `k%65y=`; the fake upstreams assert what they received.

mod support;

use serde_json::{Value, json};
use support::bin;
use support::fake_upstream::FakeUpstream;

const BIN: &str = env!("CARGO_BIN_EXE_cch");

/// (path, body) of every client inference route.
fn routes() -> Vec<(&'static str, Value)> {
    let claude = json!({"model": "claude-sonnet-4", "max_tokens": 16,
                        "messages": [{"role": "user", "content": "hi"}]});
    let gemini = json!({"contents": [{"role": "user", "parts": [{"text": "hi"}]}]});
    vec![
        ("/v1/messages", claude.clone()),
        ("/v1/messages/count_tokens", claude),
        (
            "/v1/chat/completions",
            json!({"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]}),
        ),
        ("/v1/responses", json!({"model": "gpt-5", "input": "hi"})),
        (
            "/v1beta/models/gemini-2.5-pro:generateContent",
            gemini.clone(),
        ),
        (
            "/v1beta/models/gemini-2.5-pro:streamGenerateContent",
            gemini.clone(),
        ),
        ("/v1beta/models/gemini-2.5-pro:countTokens", gemini),
    ]
}

#[tokio::test]
async fn a_key_in_the_query_authenticates_on_every_route_and_never_reaches_the_provider() {
    let up = FakeUpstream::start().await;
    up.set_count_tokens(Some(7));
    let cch = bin::spawn(BIN, &[]).await;
    // One provider per format, so each client route passes its query straight through.
    for (name, kind) in [
        ("claude", "claude"),
        ("chat", "openai-compatible"),
        ("codex", "codex"),
        ("gemini", "gemini"),
    ] {
        cch.admin_post(
            "/api/v1/providers",
            json!({"name": name, "provider_type": kind, "base_url": up.url(), "api_key": format!("sk-{name}-upstream")}),
        )
        .await;
    }
    let user = cch.admin_post("/api/v1/users", json!({"name": "u"})).await;
    let key = cch
        .admin_post(
            &format!("/api/v1/users/{}/keys", user["id"]),
            json!({"name": "k"}),
        )
        .await["key"]
        .as_str()
        .expect("key")
        .to_string();

    let forms = [
        format!("%6Bey={key}"),
        format!("KEY={key}&key={key}"),
        format!("beta=true&k%65y={key}"),
        format!("alt=sse&%4B%45%59={key}"),
    ];
    let mut sent = 0;
    for (path, body) in routes() {
        for form in &forms {
            let r = cch
                .http
                .post(cch.url(&format!("{path}?{form}")))
                .json(&body)
                .send()
                .await
                .expect("request");
            let status = r.status().as_u16();
            let text = r.text().await.unwrap_or_default();
            assert_eq!(status, 200, "{path}?{form}: {text}");
            sent += 1;
        }
    }
    let received = up.requests();
    // Counting tokens may be answered locally; every inference route reached its provider.
    for (path, per_route) in [
        ("/v1/messages", 4),
        ("/v1/chat/completions", 4),
        ("/v1/responses", 4),
        ("/v1beta/models/gemini-2.5-pro:generateContent", 4),
        ("/v1beta/models/gemini-2.5-pro:streamGenerateContent", 4),
    ] {
        let n = received.iter().filter(|r| r.path_only() == path).count();
        assert!(n >= per_route, "{path} reached the provider {n} times");
    }
    assert_eq!(sent, 28);
    for r in &received {
        let headers = format!("{:?}", r.headers);
        let body = String::from_utf8_lossy(&r.body);
        assert!(
            !r.path.contains(&key) && !headers.contains(&key) && !body.contains(&key),
            "the cch key reached the provider: {} {headers}",
            r.path
        );
        let q = r.query().unwrap_or("").to_ascii_lowercase();
        assert!(
            !q.contains("%6bey")
                && !q.contains("k%65y")
                && !q.split('&').any(|p| p.starts_with("key=")),
            "a key parameter was forwarded: {}",
            r.path
        );
    }
    // Other parameters still go through.
    assert!(
        received
            .iter()
            .any(|r| r.path_only() == "/v1/messages" && r.query() == Some("beta=true")),
        "beta=true is forwarded"
    );
}
