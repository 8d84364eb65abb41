//! The official `anthropic` Python SDK through cch against the fake upstream: a non-streaming
//! call, a streaming call, a tool-use round trip and a typed auth error. `.ci/run` installs the
//! SDK into `.venv`; without it the test prints a SKIP line.

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
