//! The sensitive-word filter (issue 14 item 1), end to end: every match type × every client
//! format is refused with 400 in the client's own error shape, naming the rule's id and never
//! the word, before any provider is called; the refusal is logged with the rule; the
//! assistant's own turns are not checked; a pattern that would backtrack for ever in another
//! engine costs linear time; the admin API validates what it saves.

mod support;

use std::time::{Duration, Instant};

use claude_code_hub::domain::request_log::{LogFilter, RequestLog};
use serde_json::{Value, json};
use support::app::{TestApp, spawn_app};
use support::fake_upstream::{FakeUpstream, Reply};

async fn setup() -> (TestApp, FakeUpstream, String) {
    let up = FakeUpstream::start().await;
    up.set_default(Reply::text("fine"));
    let t = spawn_app(&[]).await;
    let (s, p) = t
        .post(
            "/api/v1/providers",
            json!({"name": "c", "provider_type": "claude", "base_url": up.url(), "api_key": "sk-up",
                   "extra_client_formats": ["openai", "response", "gemini"]}),
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
    (t, up, k["key"].as_str().unwrap().to_string())
}

async fn rule(t: &TestApp, word: &str, match_type: &str) -> i64 {
    let (s, r) = t
        .post(
            "/api/v1/sensitive-words",
            json!({"word": word, "match_type": match_type, "note": "test"}),
        )
        .await;
    assert_eq!(s, 201, "{r}");
    r["id"].as_i64().unwrap()
}

#[derive(Clone, Copy, Debug)]
enum Format {
    Claude,
    Chat,
    Responses,
    Gemini,
}

const FORMATS: [Format; 4] = [
    Format::Claude,
    Format::Chat,
    Format::Responses,
    Format::Gemini,
];

/// (path, body) of a request whose user text is `text`.
fn request(f: Format, text: &str) -> (&'static str, Value) {
    match f {
        Format::Claude => (
            "/v1/messages",
            json!({"model": "claude-sonnet-4-5", "max_tokens": 16,
                   "messages": [{"role": "user", "content": [{"type": "text", "text": text}]}]}),
        ),
        Format::Chat => (
            "/v1/chat/completions",
            json!({"model": "claude-sonnet-4-5", "messages": [{"role": "user", "content": text}]}),
        ),
        Format::Responses => (
            "/v1/responses",
            json!({"model": "claude-sonnet-4-5",
                   "input": [{"type": "message", "role": "user",
                              "content": [{"type": "input_text", "text": text}]}]}),
        ),
        Format::Gemini => (
            "/v1beta/models/claude-sonnet-4-5:generateContent",
            json!({"contents": [{"role": "user", "parts": [{"text": text}]}]}),
        ),
    }
}

async fn send(t: &TestApp, key: &str, path: &str, body: &Value) -> (u16, Value) {
    let resp = t
        .http
        .post(t.url(path))
        .header("x-api-key", key)
        .header("x-goog-api-key", key)
        .header("authorization", format!("Bearer {key}"))
        .json(body)
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

/// The refusal message in the client's own error shape.
fn refusal_message(f: Format, body: &Value) -> String {
    match f {
        Format::Claude => {
            assert_eq!(body["type"], "error", "{body}");
            assert_eq!(body["error"]["type"], "invalid_request_error", "{body}");
        }
        Format::Chat | Format::Responses => {
            assert_eq!(body["error"]["type"], "invalid_request_error", "{body}");
        }
        Format::Gemini => {
            assert_eq!(body["error"]["code"], 400, "{body}");
            assert_eq!(body["error"]["status"], "INVALID_ARGUMENT", "{body}");
        }
    }
    body["error"]["message"].as_str().unwrap().to_string()
}

async fn logs(t: &TestApp, n: usize) -> Vec<RequestLog> {
    for _ in 0..100 {
        let rows = t
            .app
            .ctx
            .log_store
            .list_logs(&LogFilter {
                limit: 100,
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

#[tokio::test]
async fn every_match_type_blocks_every_client_format_before_any_provider_call() {
    let (t, up, key) = setup().await;
    let cases = [
        (
            rule(&t, "Project Nightingale", "contains").await,
            "notes on the PROJECT nightingale launch",
            "Nightingale",
        ),
        (
            rule(&t, "公司机密", "contains").await,
            "请总结这份公司机密文件",
            "机密",
        ),
        (
            rule(&t, "rm -rf /", "exact").await,
            "  RM -RF /  ",
            "rm -rf",
        ),
        (
            rule(&t, r"sk-ant-[a-z0-9]{8,}", "regex").await,
            "my key is sk-ant-ABCDEF123456",
            "sk-ant",
        ),
    ];
    let mut refused = 0;
    for f in FORMATS {
        for (id, text, word) in &cases {
            let (path, body) = request(f, text);
            let (status, answer) = send(&t, &key, path, &body).await;
            assert_eq!(status, 400, "{f:?} {text}: {answer}");
            let message = refusal_message(f, &answer);
            assert!(message.contains(&format!("#{id}")), "{f:?}: {message}");
            assert!(
                !message.to_lowercase().contains(&word.to_lowercase()),
                "{message}"
            );
            refused += 1;
        }
    }
    assert_eq!(
        up.request_count(),
        0,
        "a refused request reached the provider"
    );

    // Each refusal left a log row naming the rule, under the caller's key.
    let rows = logs(&t, refused).await;
    assert_eq!(rows.len(), refused);
    for row in &rows {
        assert_eq!(row.status_code, 400);
        assert!(row.key_id.is_some() && row.provider_id.is_none());
        let e = row.error_message.as_deref().unwrap();
        assert!(e.starts_with("sensitive_word: rule #"), "{e}");
    }
    let regex_id = cases[3].0;
    assert!(rows.iter().any(|r| r.error_message.as_deref()
        == Some(format!("sensitive_word: rule #{regex_id} (regex)").as_str())));

    // Clean text in every format still goes through.
    for f in FORMATS {
        let (path, body) = request(f, "a harmless question");
        let (status, answer) = send(&t, &key, path, &body).await;
        assert_eq!(status, 200, "{f:?}: {answer}");
    }
    assert_eq!(up.request_count(), 4);
}

#[tokio::test]
async fn system_prompts_and_tool_results_are_checked_but_not_the_assistants_turns() {
    let (t, up, key) = setup().await;
    let id = rule(&t, "forbidden-token", "contains").await;
    // Only in an earlier assistant turn and its tool call: allowed.
    let assistant_only = json!({"model": "claude-sonnet-4-5", "max_tokens": 16, "messages": [
        {"role": "user", "content": "hello"},
        {"role": "assistant", "content": [
            {"type": "text", "text": "I said forbidden-token"},
            {"type": "tool_use", "id": "t1", "name": "echo", "input": {"x": "forbidden-token"}}]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t1", "content": "ok"}]}]});
    let (s, a) = send(&t, &key, "/v1/messages", &assistant_only).await;
    assert_eq!(s, 200, "{a}");
    // In a tool result: refused.
    let tool_result = json!({"model": "claude-sonnet-4-5", "max_tokens": 16, "messages": [
        {"role": "user", "content": "hello"},
        {"role": "assistant", "content": [{"type": "tool_use", "id": "t1", "name": "cat", "input": {}}]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t1",
            "content": [{"type": "text", "text": "file says Forbidden-Token"}]}]}]});
    assert_eq!(send(&t, &key, "/v1/messages", &tool_result).await.0, 400);
    // In a Claude system prompt, Responses instructions, a Gemini snake_case system instruction
    // and a Gemini function response: refused.
    let system = json!({"model": "claude-sonnet-4-5", "max_tokens": 16,
        "system": [{"type": "text", "text": "use forbidden-token"}],
        "messages": [{"role": "user", "content": "hi"}]});
    assert_eq!(send(&t, &key, "/v1/messages", &system).await.0, 400);
    let instructions =
        json!({"model": "claude-sonnet-4-5", "instructions": "forbidden-token", "input": "hi"});
    assert_eq!(send(&t, &key, "/v1/responses", &instructions).await.0, 400);
    let gemini_system = json!({"system_instruction": {"parts": [{"text": "forbidden-token"}]},
        "contents": [{"role": "user", "parts": [{"text": "hi"}]}]});
    let path = "/v1beta/models/claude-sonnet-4-5:generateContent";
    assert_eq!(send(&t, &key, path, &gemini_system).await.0, 400);
    let function_response = json!({"contents": [
        {"role": "user", "parts": [{"text": "hi"}]},
        {"role": "model", "parts": [{"functionCall": {"name": "f", "args": {}}}]},
        {"role": "user", "parts": [{"functionResponse": {"name": "f", "response": {"out": "forbidden-token"}}}]}]});
    let (s, a) = send(&t, &key, path, &function_response).await;
    assert_eq!(s, 400, "{a}");
    assert!(
        a["error"]["message"]
            .as_str()
            .unwrap()
            .contains(&format!("#{id}"))
    );
    // Streams are refused the same way, before the first byte.
    let mut stream = system.clone();
    stream["stream"] = json!(true);
    assert_eq!(send(&t, &key, "/v1/messages", &stream).await.0, 400);
    assert_eq!(
        up.request_count(),
        1,
        "only the allowed request reached the provider"
    );
}

#[tokio::test]
async fn a_pattern_that_backtracks_elsewhere_costs_linear_time() {
    let (t, up, key) = setup().await;
    rule(&t, "(a+)+$", "regex").await;
    rule(&t, "(x+x+)+y", "regex").await;
    let evil = format!("{}!", "a".repeat(200_000));
    let (path, body) = request(Format::Claude, &evil);
    let started = Instant::now();
    let (s, a) = send(&t, &key, path, &body).await;
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_eq!(s, 200, "{a}");
    let (path, body) = request(Format::Chat, &"x".repeat(100_000));
    let started = Instant::now();
    assert_eq!(send(&t, &key, path, &body).await.0, 200);
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_eq!(up.request_count(), 2);
}

#[tokio::test]
async fn the_admin_api_validates_updates_and_deletes_rules() {
    let (t, up, key) = setup().await;
    let (s, e) = t
        .post(
            "/api/v1/sensitive-words",
            json!({"word": "(unclosed", "match_type": "regex"}),
        )
        .await;
    assert_eq!(s, 400, "{e}");
    assert!(e.to_string().contains("word"), "{e}");
    let (s, _) = t
        .post(
            "/api/v1/sensitive-words",
            json!({"word": "x", "match_type": "fuzzy"}),
        )
        .await;
    assert_eq!(s, 400);
    let (s, _) = t
        .post("/api/v1/sensitive-words", json!({"word": "   "}))
        .await;
    assert_eq!(s, 400);
    let id = rule(&t, "blocked", "contains").await;
    let (s, _) = t
        .post("/api/v1/sensitive-words", json!({"word": "blocked"}))
        .await;
    assert_eq!(s, 409, "a duplicate rule conflicts");
    let (s, list) = t.get("/api/v1/sensitive-words").await;
    assert_eq!(s, 200);
    assert_eq!(list.as_array().unwrap().len(), 1);
    assert_eq!(list[0]["match_type"], "contains");
    assert_eq!(list[0]["note"], "test");

    let (path, body) = request(Format::Claude, "this is blocked");
    assert_eq!(send(&t, &key, path, &body).await.0, 400);
    // Disabled: the request goes through at once (the write reloads the snapshot).
    let (s, r) = t
        .patch(
            &format!("/api/v1/sensitive-words/{id}"),
            json!({"enabled": false}),
        )
        .await;
    assert_eq!((s, &r["enabled"]), (200, &json!(false)), "{r}");
    assert_eq!(send(&t, &key, path, &body).await.0, 200);
    let (s, _) = t
        .patch(
            &format!("/api/v1/sensitive-words/{id}"),
            json!({"enabled": true, "match_type": "regex", "word": "bl(o|0)cked"}),
        )
        .await;
    assert_eq!(s, 200);
    let (path0, body0) = request(Format::Claude, "bl0cked");
    assert_eq!(send(&t, &key, path0, &body0).await.0, 400);
    let (s, _) = t
        .patch(
            &format!("/api/v1/sensitive-words/{id}"),
            json!({"word": "(("}),
        )
        .await;
    assert_eq!(s, 400, "an update is validated too");
    assert_eq!(
        t.delete(&format!("/api/v1/sensitive-words/{id}")).await,
        204
    );
    assert_eq!(
        t.delete(&format!("/api/v1/sensitive-words/{id}")).await,
        404
    );
    assert_eq!(send(&t, &key, path0, &body0).await.0, 200);
    assert_eq!(up.request_count(), 2);

    // Without the admin token: 401.
    let resp = t
        .http
        .get(t.url("/api/v1/sensitive-words"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
}

#[tokio::test]
async fn text_remembered_as_clean_is_checked_again_when_the_rules_change() {
    let (t, up, key) = setup().await;
    rule(&t, "unrelated", "contains").await;
    // A long part (remembered once found clean) carrying a word no rule names yet.
    let long = format!(
        "{} the launch code is zebra-42 {}",
        "x".repeat(600),
        "y".repeat(600)
    );
    let (path, body) = request(Format::Claude, &long);
    assert_eq!(send(&t, &key, path, &body).await.0, 200);
    assert_eq!(send(&t, &key, path, &body).await.0, 200);
    rule(&t, "zebra-42", "contains").await;
    assert_eq!(send(&t, &key, path, &body).await.0, 400);
    assert_eq!(up.request_count(), 2);
}
