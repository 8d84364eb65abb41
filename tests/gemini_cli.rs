//! Gemini CLI with Google login (issue 12 item 7): the Code Assist client route
//! (`/v1internal:{generateContent,streamGenerateContent,countTokens}` with the
//! `{model, project, user_prompt_id, request}` envelope, every answer and chunk wrapped as
//! `{"response": …}`; shapes from gemini-cli's `packages/core/src/code_assist/converter.ts` and
//! `server.ts`), `gemini-cli` providers (the envelope on the way out, unwrapped on the way
//! back), and OAuth credentials as provider keys, refreshed before expiry against a token
//! endpoint through the provider's proxy, once, and stored for every instance.

mod support;

use std::time::Duration;

use claude_code_hub::domain::request_log::{LogFilter, RequestLog};
use serde_json::{Value, json};
use support::app::{TestApp, spawn_app};
use support::fake_upstream::{FakeUpstream, Reply};
use support::socks5::Socks5Proxy;

/// What gemini-cli sends for one turn (its `toGenerateContentRequest`).
fn cli_envelope(model: &str) -> Value {
    json!({"model": model, "project": "client-proj", "user_prompt_id": "prompt-7",
           "request": {
               "contents": [{"role": "user", "parts": [{"text": "list the files"}]}],
               "systemInstruction": {"role": "user", "parts": [{"text": "You are Gemini CLI."}]},
               "tools": [{"functionDeclarations": [{"name": "ls",
                   "parametersJsonSchema": {"type": "object", "properties": {"path": {"type": "string"}}}}]}],
               "generationConfig": {"temperature": 0, "thinkingConfig": {"includeThoughts": true}},
               "session_id": "cli-session-1"}})
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

async fn provider(t: &TestApp, body: Value) -> i64 {
    let (s, p) = t.post("/api/v1/providers", body).await;
    assert_eq!(s, 201, "{p}");
    p["id"].as_i64().unwrap()
}

async fn call(t: &TestApp, key: &str, path: &str, body: &Value) -> (u16, String) {
    let r = t
        .http
        .post(t.url(path))
        .bearer_auth(key)
        .json(body)
        .send()
        .await
        .unwrap();
    let s = r.status().as_u16();
    (s, r.text().await.unwrap_or_default())
}

/// Every `data:` payload of an SSE body, parsed.
fn sse_json(body: &str) -> Vec<Value> {
    body.lines()
        .filter_map(|l| l.strip_prefix("data: "))
        .filter_map(|d| serde_json::from_str(d).ok())
        .collect()
}

fn credential(token_url: &str, expiry_ms: i64) -> String {
    json!({"access_token": "ya29.stale", "refresh_token": "1//refresh-secret",
           "client_id": "cid.apps.googleusercontent.com", "client_secret": "client-secret-x",
           "token_uri": token_url, "expiry_date": expiry_ms, "project_id": "prov-proj",
           "token_type": "Bearer", "scope": "https://www.googleapis.com/auth/cloud-platform"})
    .to_string()
}

/// The request-log rows once `ready` holds for them (the writer batches; wait up to 5 s).
async fn rows_when(t: &TestApp, ready: impl Fn(&[RequestLog]) -> bool) -> Vec<RequestLog> {
    let mut rows = Vec::new();
    for _ in 0..100 {
        rows = t
            .app
            .ctx
            .log_store
            .list_logs(&LogFilter {
                limit: 100,
                ..Default::default()
            })
            .await
            .unwrap();
        if ready(&rows) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    rows
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

#[tokio::test]
async fn code_assist_clients_are_served_like_gemini_and_answered_wrapped() {
    let claude = FakeUpstream::start().await;
    claude.set_default(Reply::text("from claude"));
    let t = spawn_app(&[]).await;
    provider(
        &t,
        json!({"name": "claude", "provider_type": "claude", "base_url": claude.url(),
               "api_key": "sk-c", "extra_client_formats": ["gemini"]}),
    )
    .await;
    let key = user_key(&t).await;

    let (s, body) = call(
        &t,
        &key,
        "/v1internal:generateContent",
        &cli_envelope("gemini-2.5-pro"),
    )
    .await;
    assert_eq!(s, 200, "{body}");
    let v: Value = serde_json::from_str(&body).unwrap();
    let text = &v["response"]["candidates"][0]["content"]["parts"][0]["text"];
    assert_eq!(text, "from claude", "{v}");
    assert!(
        v["response"]["usageMetadata"]["promptTokenCount"].is_u64(),
        "{v}"
    );
    // The Claude provider got the unwrapped request, converted: tools with their schema.
    let sent = claude.last_request().unwrap().json.unwrap();
    assert_eq!(
        sent["tools"][0]["input_schema"]["properties"]["path"]["type"],
        "string"
    );
    assert_eq!(sent["system"][0]["text"], "You are Gemini CLI.", "{sent}");

    claude.set_default(Reply::stream("streamed from claude"));
    let (s, body) = call(
        &t,
        &key,
        "/v1internal:streamGenerateContent?alt=sse",
        &cli_envelope("gemini-2.5-pro"),
    )
    .await;
    assert_eq!(s, 200, "{body}");
    let chunks = sse_json(&body);
    assert!(!chunks.is_empty(), "{body}");
    assert!(chunks.iter().all(|c| c.get("response").is_some()), "{body}");
    let streamed: String = chunks
        .iter()
        .filter_map(|c| c["response"]["candidates"][0]["content"]["parts"][0]["text"].as_str())
        .collect();
    assert_eq!(streamed, "streamed from claude");

    // Counting answers bare, as Code Assist does.
    let count = json!({"request": {"model": "models/gemini-2.5-pro",
        "contents": [{"role": "user", "parts": [{"text": "count these words please"}]}]}});
    let (s, body) = call(&t, &key, "/v1internal:countTokens", &count).await;
    assert_eq!(s, 200, "{body}");
    let v: Value = serde_json::from_str(&body).unwrap();
    assert!(v["totalTokens"].as_u64().unwrap() > 0, "{v}");
    assert!(v.get("response").is_none());

    // The original's path spelling is served too.
    let (s, body) = call(
        &t,
        &key,
        "/v1internal/models/gemini-2.5-pro:generateContent",
        &cli_envelope(""),
    )
    .await;
    assert_eq!(s, 200, "{body}");

    // A body that is not an envelope is a 400 in Gemini's error shape, logged.
    let (s, body) = call(
        &t,
        &key,
        "/v1internal:generateContent",
        &json!({"contents": []}),
    )
    .await;
    assert_eq!(s, 400, "{body}");
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["error"]["status"], "INVALID_ARGUMENT", "{v}");
    let (s, _) = call(&t, &key, "/v1internal:loadCodeAssist", &json!({})).await;
    assert_eq!(s, 404);

    let rows = rows_when(&t, |rows| rows.len() >= 5).await;
    assert!(
        rows.iter()
            .any(|r| r.endpoint == "/v1internal:streamGenerateContent" && r.status_code == 200),
        "the stream is logged under its own endpoint"
    );
    let served = rows
        .iter()
        .find(|r| r.endpoint == "/v1internal:generateContent" && r.status_code == 200)
        .expect("a logged generate call");
    assert_eq!(served.requested_model.as_deref(), Some("gemini-2.5-pro"));
    assert_eq!(
        served.session_id.as_deref(),
        Some("cli-session-1"),
        "Gemini CLI's own session id keeps the session"
    );
}

#[tokio::test]
async fn gemini_cli_providers_get_the_envelope_and_their_answers_are_unwrapped() {
    let ca = FakeUpstream::start().await;
    ca.set_default(Reply::text("from code assist"));
    let oauth = FakeUpstream::start().await;
    let t = spawn_app(&[]).await;
    let cred = credential(&format!("{}/token", oauth.url()), now_ms() + 3_600_000);
    provider(
        &t,
        json!({"name": "cli", "provider_type": "gemini-cli", "base_url": ca.url(),
               "api_key": cred, "extra_client_formats": ["claude"]}),
    )
    .await;
    let key = user_key(&t).await;

    // A plain Gemini client.
    let public = json!({"contents": [{"role": "user", "parts": [{"text": "hi"}]}]});
    let (s, body) = call(
        &t,
        &key,
        "/v1beta/models/gemini-2.5-pro:generateContent",
        &public,
    )
    .await;
    assert_eq!(s, 200, "{body}");
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        v["candidates"][0]["content"]["parts"][0]["text"], "from code assist",
        "{v}"
    );
    assert!(
        v.get("response").is_none(),
        "the client gets the public shape"
    );
    let sent = ca.last_request().unwrap();
    assert_eq!(sent.path_only(), "/v1internal:generateContent");
    assert_eq!(sent.header("authorization"), Some("Bearer ya29.stale"));
    assert_eq!(sent.header("x-goog-api-key"), None);
    let env = sent.json.unwrap();
    assert_eq!(env["model"], "gemini-2.5-pro");
    assert_eq!(env["project"], "prov-proj", "the credential's project");
    assert_eq!(env["request"]["contents"], public["contents"]);
    assert_eq!(oauth.token_refreshes(), 0, "a fresh token is not refreshed");

    // Streams are unwrapped chunk by chunk.
    ca.set_default(Reply::stream("streamed by code assist"));
    let (s, body) = call(
        &t,
        &key,
        "/v1beta/models/gemini-2.5-pro:streamGenerateContent?alt=sse",
        &public,
    )
    .await;
    assert_eq!(s, 200, "{body}");
    let sent = ca.last_request().unwrap();
    assert_eq!(sent.path_only(), "/v1internal:streamGenerateContent");
    assert_eq!(sent.query(), Some("alt=sse"));
    let chunks = sse_json(&body);
    assert!(chunks.iter().all(|c| c.get("response").is_none()), "{body}");
    let text: String = chunks
        .iter()
        .filter_map(|c| c["candidates"][0]["content"]["parts"][0]["text"].as_str())
        .collect();
    assert_eq!(text, "streamed by code assist");

    // A Claude client through conversion, JSON and stream.
    ca.set_default(Reply::text("converted answer"));
    let claude_req = json!({"model": "gemini-2.5-pro", "max_tokens": 100,
        "messages": [{"role": "user", "content": "hello"}]});
    let r = t
        .http
        .post(t.url("/v1/messages"))
        .header("x-api-key", &key)
        .header("anthropic-version", "2023-06-01")
        .json(&claude_req)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["content"][0]["text"], "converted answer", "{v}");
    assert!(v["usage"]["input_tokens"].is_u64());
    ca.set_default(Reply::stream("converted stream"));
    let mut streaming = claude_req.clone();
    streaming["stream"] = json!(true);
    let r = t
        .http
        .post(t.url("/v1/messages"))
        .header("x-api-key", &key)
        .json(&streaming)
        .send()
        .await
        .unwrap();
    let body = r.text().await.unwrap();
    let text: String = sse_json(&body)
        .iter()
        .filter_map(|e| e["delta"]["text"].as_str())
        .collect();
    assert_eq!(text, "converted stream", "{body}");

    // A Code Assist client to a Code Assist provider: wrapped once each way, ids passed on.
    ca.set_default(Reply::text("round trip"));
    let (s, body) = call(
        &t,
        &key,
        "/v1internal:generateContent",
        &cli_envelope("gemini-2.5-pro"),
    )
    .await;
    assert_eq!(s, 200, "{body}");
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        v["response"]["candidates"][0]["content"]["parts"][0]["text"], "round trip",
        "{v}"
    );
    let env = ca.last_request().unwrap().json.unwrap();
    assert_eq!(env["project"], "prov-proj");
    assert_eq!(env["user_prompt_id"], "prompt-7");
    assert_eq!(env["request"]["session_id"], "cli-session-1");
    assert!(env["request"].get("model").is_none());

    // Counting through Code Assist: contents only, the system instruction folded in.
    let count = json!({"model": "gemini-2.5-pro", "max_tokens": 1, "system": "sys",
        "messages": [{"role": "user", "content": "count me"}]});
    let r = t
        .http
        .post(t.url("/v1/messages/count_tokens"))
        .header("x-api-key", &key)
        .json(&count)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        r.headers()
            .get("x-cch-token-count")
            .and_then(|v| v.to_str().ok()),
        Some("upstream")
    );
    let sent = ca.last_request().unwrap();
    assert_eq!(sent.path_only(), "/v1internal:countTokens");
    let req = &sent.json.unwrap()["request"];
    assert_eq!(req["model"], "models/gemini-2.5-pro");
    assert_eq!(req["contents"][0]["parts"][0]["text"], "sys");

    // Test connection speaks Code Assist too.
    let (s, providers) = t.get("/api/v1/providers").await;
    assert_eq!(s, 200);
    let id = providers[0]["id"].as_i64().unwrap();
    assert_eq!(providers[0]["api_key"], "**** (OAuth credential)");
    let (s, r) = t
        .post(&format!("/api/v1/providers/{id}/test"), json!({}))
        .await;
    assert_eq!(s, 200, "{r}");
    assert_eq!(r["ok"], true, "{r}");
    assert_eq!(
        ca.last_request().unwrap().path_only(),
        "/v1internal:generateContent"
    );
}

#[tokio::test]
async fn an_expiring_token_is_refreshed_once_through_the_proxy_and_stored_sealed() {
    let ca = FakeUpstream::start().await;
    ca.set_default(Reply::text("ok"));
    let oauth = FakeUpstream::start().await;
    let socks = Socks5Proxy::start().await;
    let t = spawn_app(&[]).await;
    // Expires in two minutes: inside the refresh margin.
    let cred = credential(&format!("{}/token", oauth.url()), now_ms() + 120_000);
    let id = provider(
        &t,
        json!({"name": "cli", "provider_type": "gemini-cli", "base_url": ca.url(),
               "api_key": cred, "proxy_url": socks.url()}),
    )
    .await;
    let key = user_key(&t).await;
    let public = json!({"contents": [{"role": "user", "parts": [{"text": "hi"}]}]});
    let calls = (0..8).map(|_| {
        call(
            &t,
            &key,
            "/v1beta/models/gemini-2.5-pro:generateContent",
            &public,
        )
    });
    for (s, body) in futures_util::future::join_all(calls).await {
        assert_eq!(s, 200, "{body}");
    }
    assert_eq!(
        oauth.token_refreshes(),
        1,
        "one refresh for eight concurrent requests"
    );
    let form = String::from_utf8(oauth.requests()[0].body.to_vec()).unwrap();
    assert!(form.contains("grant_type=refresh_token"), "{form}");
    assert!(
        form.contains("refresh_token=1%2F%2Frefresh-secret"),
        "{form}"
    );
    assert!(form.contains("client_secret=client-secret-x"), "{form}");
    assert!(
        ca.requests()
            .iter()
            .all(|r| r.header("authorization") == Some("Bearer ya29.fresh-1")),
        "every request used the refreshed token"
    );
    let targets = socks.targets();
    assert!(
        targets
            .iter()
            .any(|a| a.ends_with(&oauth.addr().port().to_string())),
        "the refresh went through the provider's proxy: {targets:?}"
    );

    // Stored for every instance: the refreshed credential, with the refresh token kept...
    let stored = t.app.ctx.config_store.get_provider(id).await.unwrap();
    let c: Value = serde_json::from_str(&stored.api_key).unwrap();
    assert_eq!(c["access_token"], "ya29.fresh-1");
    assert_eq!(c["refresh_token"], "1//refresh-secret");
    assert_eq!(c["client_id"], "cid.apps.googleusercontent.com");
    assert!(c["expiry_date"].as_i64().unwrap() > now_ms() + 3_000_000);
    // ...and sealed at rest.
    let mut raw = Vec::new();
    for name in ["cch.db", "cch.db-wal"] {
        raw.extend(std::fs::read(t.dir.path().join(name)).unwrap_or_default());
    }
    let raw = String::from_utf8_lossy(&raw);
    assert!(!raw.contains("ya29.fresh-1") && !raw.contains("refresh-secret"));

    // A second instance on the same database uses the stored token without refreshing.
    t.app.ctx.snapshot.reload(chrono::Utc::now()).await.unwrap();
    let (s, _) = call(
        &t,
        &key,
        "/v1beta/models/gemini-2.5-pro:generateContent",
        &public,
    )
    .await;
    assert_eq!(s, 200);
    assert_eq!(oauth.token_refreshes(), 1);
}

#[tokio::test]
async fn a_refused_refresh_fails_over_and_names_no_secret() {
    let ca = FakeUpstream::start().await;
    let backup = FakeUpstream::start().await;
    backup.set_default(Reply::text("from the backup"));
    let oauth = FakeUpstream::start().await;
    oauth.set_token_status(400);
    let t = spawn_app(&[]).await;
    let expired = credential(&format!("{}/token", oauth.url()), now_ms() - 60_000);
    provider(
        &t,
        json!({"name": "cli", "provider_type": "gemini-cli", "base_url": ca.url(),
               "api_key": expired, "priority": 0}),
    )
    .await;
    provider(
        &t,
        json!({"name": "backup", "provider_type": "gemini", "base_url": backup.url(),
               "api_key": "AIza-backup", "priority": 5}),
    )
    .await;
    let key = user_key(&t).await;
    let public = json!({"contents": [{"role": "user", "parts": [{"text": "hi"}]}]});
    let (s, body) = call(
        &t,
        &key,
        "/v1beta/models/gemini-2.5-pro:generateContent",
        &public,
    )
    .await;
    assert_eq!(s, 200, "{body}");
    assert!(body.contains("from the backup"));
    assert_eq!(ca.request_count(), 0, "no request without a valid token");
    assert_eq!(
        backup.last_request().unwrap().header("x-goog-api-key"),
        Some("AIza-backup")
    );
    let rows = rows_when(&t, |rows| !rows.is_empty()).await;
    let chain = rows[0].provider_chain.to_string();
    assert!(chain.contains("invalid_grant"), "{chain}");
    for secret in ["refresh-secret", "client-secret-x", "ya29"] {
        assert!(!chain.contains(secret), "{chain}");
    }
}

#[tokio::test]
async fn oauth_credentials_are_validated_when_saved() {
    let t = spawn_app(&[]).await;
    let pretty =
        serde_json::to_string_pretty(&json!({"access_token": "ya29.a", "refresh_token": "1//r"}))
            .unwrap();
    let (s, _) = t
        .post(
            "/api/v1/providers",
            json!({"name": "ok", "provider_type": "gemini-cli",
                   "base_url": "https://cloudcode-pa.googleapis.com", "api_key": pretty}),
        )
        .await;
    assert_eq!(s, 201, "a pretty-printed credential file is accepted");
    for bad in [r#"{"access_token": "#, r#"{"scope": "x"}"#] {
        let (s, e) = t
            .post(
                "/api/v1/providers",
                json!({"name": "bad", "provider_type": "gemini-cli",
                       "base_url": "https://cloudcode-pa.googleapis.com", "api_key": bad}),
            )
            .await;
        assert_eq!(s, 400, "{e}");
        assert!(e.to_string().contains("api_key"), "{e}");
    }
}
