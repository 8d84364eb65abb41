//! The official `anthropic` Python SDK through cch against the fake upstream: a non-streaming
//! call, a streaming call, a tool-use round trip and a typed auth error. `.ci/run` installs the
//! SDK into `.venv`; without it the test prints a SKIP line. The same file runs the `openai`
//! (`tests/python/openai_sdk.py`) and `google-genai` (`tests/python/gemini_sdk.py`) SDKs against a
//! provider of their own format (passthrough) and against a `claude` provider (conversion).

mod support;

use serde_json::json;
use support::app::spawn_app;
use support::fake_upstream::{FakeUpstream, Reply};

fn python() -> Option<std::path::PathBuf> {
    let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(".venv/bin/python");
    p.exists().then_some(p)
}

#[tokio::test]
async fn anthropic_sdk_round_trips() {
    let Some(py) = python() else {
        eprintln!("SKIP anthropic_sdk_round_trips: no .venv with the anthropic SDK (run .ci/run)");
        return;
    };
    let up = FakeUpstream::start().await;
    let t = spawn_app(&[]).await;
    let (s, _) = t
        .post("/api/v1/providers", json!({"name": "a", "provider_type": "claude", "base_url": up.url(), "api_key": "sk-123456789"}))
        .await;
    assert_eq!(s, 201);
    let (_, u) = t.post("/api/v1/users", json!({"name": "u"})).await;
    let (_, k) = t
        .post(
            &format!("/api/v1/users/{}/keys", u["id"]),
            json!({"name": "k"}),
        )
        .await;
    up.push(Reply::message("hello there"));
    up.push(Reply::stream("streamed hello"));
    up.push(Reply::tool_use("get_weather", json!({"city": "Paris"})));
    up.push(Reply::message("It is sunny in Paris."));
    let script =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/python/anthropic_sdk.py");
    let out = tokio::process::Command::new(py)
        .arg(script)
        .env("CCH_BASE_URL", &t.base)
        .env("CCH_KEY", k["key"].as_str().unwrap())
        .output()
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "stdout: {stdout}\nstderr: {stderr}");
    assert!(stdout.contains("anthropic sdk: ok"));
    // The tool result reached the upstream in the second tool request.
    let last = up.last_request().unwrap().json.unwrap();
    assert_eq!(last["messages"][2]["content"][0]["type"], "tool_result");
}

/// A cch with one key whose providers all point at `up`: `(type, extra_client_formats)` each.
async fn cch_with(
    up: &FakeUpstream,
    providers: &[(&str, &[&str])],
) -> (support::app::TestApp, String) {
    let t = spawn_app(&[]).await;
    for (i, (ty, extra)) in providers.iter().enumerate() {
        let (s, p) = t
            .post("/api/v1/providers", json!({"name": format!("p{i}"), "provider_type": ty, "base_url": up.url(), "api_key": "sk-123456789", "extra_client_formats": extra}))
            .await;
        assert_eq!(s, 201, "{p}");
    }
    let (_, u) = t.post("/api/v1/users", json!({"name": "u"})).await;
    let (_, k) = t
        .post(
            &format!("/api/v1/users/{}/keys", u["id"]),
            json!({"name": "k"}),
        )
        .await;
    (t, k["key"].as_str().unwrap().to_string())
}

/// Runs `tests/python/{script}` against `t`; `None` when it printed a SKIP line.
async fn run_script(
    py: std::path::PathBuf,
    script: &str,
    t: &support::app::TestApp,
    key: &str,
) -> Option<String> {
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/python")
        .join(script);
    let out = tokio::process::Command::new(py)
        .arg(script)
        .env("CCH_BASE_URL", &t.base)
        .env("CCH_KEY", key)
        .output()
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "stdout: {stdout}\nstderr: {stderr}");
    if let Some(line) = stdout.lines().find(|l| l.starts_with("SKIP")) {
        eprintln!("{line}");
        return None;
    }
    Some(stdout)
}

fn push_openai_script_replies(up: &FakeUpstream) {
    up.push(Reply::message("hello there"));
    up.push(Reply::stream("streamed hello from the fake"));
    up.push(Reply::tool_use_stream(
        "get_weather",
        json!({"city": "Paris"}),
    ));
    up.push(Reply::message("hello from responses"));
    up.push(Reply::tool_use_stream(
        "get_weather",
        json!({"city": "Paris"}),
    ));
}

fn push_gemini_script_replies(up: &FakeUpstream) {
    up.push(Reply::message("hello there"));
    up.push(Reply::stream("streamed hello from the fake"));
    up.push(Reply::tool_use("get_weather", json!({"city": "Paris"})));
}

/// The `openai` SDK (Chat and Responses) through cch to an `openai-compatible` and a `codex`
/// provider: passthrough, no conversion.
#[tokio::test]
async fn openai_sdk_on_openai_providers() {
    let Some(py) = python() else {
        eprintln!("SKIP openai_sdk_on_openai_providers: no .venv (run .ci/run)");
        return;
    };
    let up = FakeUpstream::start().await;
    let (t, key) = cch_with(&up, &[("openai-compatible", &[]), ("codex", &[])]).await;
    push_openai_script_replies(&up);
    let Some(stdout) = run_script(py, "openai_sdk.py", &t, &key).await else {
        return;
    };
    assert!(stdout.contains("openai sdk: ok"));
    let paths: Vec<String> = up.requests().iter().map(|r| r.path.clone()).collect();
    assert_eq!(
        paths,
        [
            "/v1/chat/completions",
            "/v1/chat/completions",
            "/v1/chat/completions",
            "/v1/responses",
            "/v1/responses"
        ]
    );
}

/// The `openai` SDK (Chat and Responses) through cch to a `claude` provider: needs the
/// converters.
#[tokio::test]
async fn openai_sdk_on_claude_provider() {
    let Some(py) = python() else {
        eprintln!("SKIP openai_sdk_on_claude_provider: no .venv (run .ci/run)");
        return;
    };
    let up = FakeUpstream::start().await;
    let (t, key) = cch_with(&up, &[("claude", &["openai", "response"])]).await;
    push_openai_script_replies(&up);
    let Some(stdout) = run_script(py, "openai_sdk.py", &t, &key).await else {
        return;
    };
    assert!(stdout.contains("openai sdk: ok"));
    assert!(
        up.requests()
            .iter()
            .all(|r| r.path_only() == "/v1/messages")
    );
}

/// The `google-genai` SDK through cch to a `gemini` provider: passthrough.
#[tokio::test]
async fn gemini_sdk_on_gemini_provider() {
    let Some(py) = python() else {
        eprintln!("SKIP gemini_sdk_on_gemini_provider: no .venv (run .ci/run)");
        return;
    };
    let up = FakeUpstream::start().await;
    let (t, key) = cch_with(&up, &[("gemini", &[])]).await;
    push_gemini_script_replies(&up);
    let Some(stdout) = run_script(py, "gemini_sdk.py", &t, &key).await else {
        return;
    };
    assert!(stdout.contains("gemini sdk: ok"));
    let reqs = up.requests();
    assert_eq!(reqs.len(), 3);
    assert_eq!(reqs[1].query(), Some("alt=sse"));
    assert_eq!(reqs[0].header("x-goog-api-key"), Some("sk-123456789"));
}

/// The `google-genai` SDK through cch to a `claude` provider: needs the converters.
#[tokio::test]
async fn gemini_sdk_on_claude_provider() {
    let Some(py) = python() else {
        eprintln!("SKIP gemini_sdk_on_claude_provider: no .venv (run .ci/run)");
        return;
    };
    let up = FakeUpstream::start().await;
    let (t, key) = cch_with(&up, &[("claude", &["gemini"])]).await;
    push_gemini_script_replies(&up);
    let Some(stdout) = run_script(py, "gemini_sdk.py", &t, &key).await else {
        return;
    };
    assert!(stdout.contains("gemini sdk: ok"));
    assert!(
        up.requests()
            .iter()
            .all(|r| r.path_only() == "/v1/messages")
    );
}
